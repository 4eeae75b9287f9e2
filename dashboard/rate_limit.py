"""A token bucket: how many messages one socket may send, and how fast.

A yes/no per frame, no waiting, no shared storage: what rate-limit libraries don't offer.
"""

import time
from collections.abc import Callable


class TokenBucket:
    """Allows bursts of up to `capacity`, refilled at `rate` per second.

    `clock` returns seconds (monotonic); tests pass their own.
    """

    def __init__(
        self, capacity: int, rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1 or rate <= 0:
            raise ValueError("a token bucket needs a capacity of at least 1 and a positive rate")
        self.capacity = capacity
        self.rate = rate
        self._clock = clock
        self._tokens = float(capacity)
        self._updated = clock()

    def take(self) -> bool:
        """Spend one token; False (and nothing spent) when the bucket is empty."""
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
