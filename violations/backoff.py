"""Retrying without a stampede: the listener's reconnects and the web processes'
channel-layer resubscriptions wait the same way."""

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Capped exponential backoff with full jitter (so many listeners don't retry in step)."""

    initial: float = 0.25
    cap: float = 30.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.initial * 2**self.attempt)
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
