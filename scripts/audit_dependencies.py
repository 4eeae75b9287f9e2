"""Audit the pinned dependencies (constraints.txt) for known vulnerabilities with pip-audit.

    python scripts/audit_dependencies.py [constraints.txt]      (or: make audit)

pip-audit says "No known vulnerabilities found" and exits 0 even when it could look
nothing up (PyPI answering 404 for every package, as on an offline mirror). This wrapper
reads its JSON report instead and says what was really checked:

- a known vulnerability            -> "VULNERABLE", exit 1 (fails CI)
- nothing could be looked up       -> "skipped: <why>", exit 0 (never "clean")
- some packages could not be       -> says how many were checked and which were not, exit 0
- everything looked up, none found -> "clean", exit 0
- pip-audit failed for another reason (a bad constraints file, a bug) -> exit 2

Hand-written because the distinction between "clean" and "could not look" is the point,
and pip-audit's own exit code does not make it.
"""

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What pip-audit prints when it cannot reach its vulnerability service: its own advice
# for VulnServiceConnectionError, or a requests/urllib3 connection error it let through.
UNREACHABLE_MARKERS = (
    "your network may be blocking this service",
    "Could not connect to PyPI's vulnerability feed",
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "NameResolutionError",
    "Max retries exceeded",
)


@dataclass(frozen=True)
class Verdict:
    status: str  # "vulnerable", "skipped", "partial", "clean" or "error"
    message: str
    exit_code: int


def verdict(report: dict[str, Any] | None, returncode: int, stderr: str) -> Verdict:
    """Decide from pip-audit's JSON report (None if it wrote none), exit code and stderr."""
    if report is None:
        if any(marker in stderr for marker in UNREACHABLE_MARKERS):
            return Verdict(
                "skipped",
                "skipped: the vulnerability service could not be reached "
                f"({_last_line(stderr)}); nothing was audited",
                0,
            )
        return Verdict("error", f"pip-audit failed (exit {returncode}): {_last_line(stderr)}", 2)

    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if "skip_reason" in d]
    audited = len(dependencies) - len(skipped)

    if vulnerable:
        lines = [
            f"  {d['name']} {d.get('version', '?')}: {v['id']}"
            + (f" (fixed in {', '.join(v['fix_versions'])})" if v.get("fix_versions") else "")
            for d in vulnerable
            for v in d["vulns"]
        ]
        return Verdict(
            "vulnerable",
            "VULNERABLE: known vulnerabilities in pinned dependencies:\n" + "\n".join(lines),
            1,
        )
    if not dependencies:
        return Verdict("error", "pip-audit reported no dependencies at all", 2)
    if audited == 0:
        return Verdict(
            "skipped",
            f"skipped: no vulnerability data could be looked up for any of the "
            f"{len(dependencies)} pinned packages ({skipped[0]['skip_reason']})",
            0,
        )
    if skipped:
        names = ", ".join(d["name"] for d in skipped)
        return Verdict(
            "partial",
            f"no known vulnerabilities in {audited} audited packages; "
            f"{len(skipped)} could not be looked up and were skipped: {names}",
            0,
        )
    return Verdict("clean", f"clean: no known vulnerabilities in {audited} pinned packages", 0)


# A network that swallows packets instead of refusing them must not stall CI.
REQUEST_TIMEOUT = 10
TOTAL_TIMEOUT = 300


def run_pip_audit(constraints: Path) -> tuple[dict[str, Any] | None, int, str]:
    """pip-audit on `constraints`: its JSON report (None if it wrote none), exit code, stderr."""
    with tempfile.TemporaryDirectory(prefix="pip-audit-") as tmp:
        report_path = Path(tmp) / "report.json"
        argv = [
            sys.executable,
            "-m",
            "pip_audit",
            "--requirement",
            str(constraints),
            "--no-deps",  # every line is an exact pin: nothing to resolve
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--cache-dir",
            str(Path(tmp) / "cache"),
            "--timeout",
            str(REQUEST_TIMEOUT),
            "--format",
            "json",
            "--output",
            str(report_path),
        ]
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=TOTAL_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            return None, -1, f"ConnectTimeout: no answer within {TOTAL_TIMEOUT} s in all"
        report = json.loads(report_path.read_text()) if report_path.exists() else None
    return report, result.returncode, result.stderr


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def main(argv: list[str]) -> int:
    constraints = Path(argv[1] if len(argv) > 1 else "constraints.txt")
    result = verdict(*run_pip_audit(constraints))
    print(f"dependency audit of {constraints}: {result.message}")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
