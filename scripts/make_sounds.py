"""Generate the dashboard's alert sounds, one per violation type.

Writes three short mono WAV files (16-bit PCM, 22050 Hz) to ``static/sounds/``:

- ``human.wav``: person in restricted zone, two quick rising beeps (880 Hz, then 1320 Hz);
- ``loto.wav``: lock-out/tag-out, a lower, longer two-tone "dong" (523 Hz, then 392 Hz);
- ``ppe.wav``: PPE missing, three short equal chirps (1047 Hz).

Every tone is a sine wave with a short linear attack and release, so there are no clicks. The
output is deterministic: the same bytes on every run. The sounds are the project's own work, under
the project's licence.

Run (from the project root):

    .venv/bin/python scripts/make_sounds.py
"""

from __future__ import annotations

import math
import sys
import wave
from array import array
from pathlib import Path

SAMPLE_RATE = 22050
PEAK = 0.6  # fraction of full scale
RAMP_MS = 8.0  # attack and release length of every tone
FULL_SCALE = 32767
OUT_DIR = Path(__file__).resolve().parent.parent / "static" / "sounds"

# A pattern is a sequence of (frequency in Hz, duration in ms); frequency 0 is silence.
Pattern = list[tuple[float, float]]

PATTERNS: dict[str, Pattern] = {
    "human": [(880.0, 120.0), (0.0, 40.0), (1320.0, 120.0)],
    "loto": [(523.0, 180.0), (0.0, 30.0), (392.0, 180.0)],
    "ppe": [(1047.0, 70.0), (0.0, 50.0), (1047.0, 70.0), (0.0, 50.0), (1047.0, 70.0)],
}


def tone(freq: float, ms: float, rate: int = SAMPLE_RATE) -> array:
    """Samples of one enveloped sine tone (or silence if ``freq`` is 0), as 16-bit ints."""
    n = round(rate * ms / 1000.0)
    samples = array("h", bytes(2 * n))
    if freq <= 0:
        return samples
    ramp = max(1, min(round(rate * RAMP_MS / 1000.0), n // 2))
    for i in range(n):
        env = min(1.0, i / ramp, (n - 1 - i) / ramp)
        value = PEAK * env * math.sin(2.0 * math.pi * freq * i / rate)
        samples[i] = round(value * FULL_SCALE)
    return samples


def render(pattern: Pattern, rate: int = SAMPLE_RATE) -> array:
    """Samples of a whole pattern, its tones and gaps concatenated."""
    samples = array("h")
    for freq, ms in pattern:
        samples.extend(tone(freq, ms, rate))
    return samples


def write_wav(path: Path, samples: array, rate: int = SAMPLE_RATE) -> None:
    """Write mono 16-bit little-endian PCM samples to ``path``."""
    if sys.byteorder != "little":
        samples = array("h", samples)
        samples.byteswap()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


def main() -> int:
    """Render every pattern in ``PATTERNS`` to ``OUT_DIR/<name>.wav``."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, pattern in PATTERNS.items():
        path = OUT_DIR / f"{name}.wav"
        samples = render(pattern)
        write_wav(path, samples)
        print(f"{path}: {len(samples) / SAMPLE_RATE:.3f} s, {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
