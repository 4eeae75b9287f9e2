"""Percentiles and the per-run figures derived from what the clients received."""

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    """Median of the values that are numbers; NaN when there are none."""
    numbers = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(numbers) if numbers else math.nan


@dataclass(frozen=True)
class Delivery:
    """How many (socket, event) deliveries were expected, made, missing and repeated."""

    expected: int
    delivered: int
    lost: int
    duplicates: int

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.duplicates == 0


def delivery(sockets: Sequence[Sequence[int]], expected_seqs: range) -> Delivery:
    """Compare each socket's received event numbers with the events that were sent."""
    wanted = set(expected_seqs)
    lost = duplicates = delivered = 0
    for seqs in sockets:
        seen: set[int] = set()
        for seq in seqs:
            if seq in seen:
                duplicates += 1
            elif seq in wanted:
                seen.add(seq)
        delivered += len(seen)
        lost += len(wanted) - len(seen)
    return Delivery(len(wanted) * len(sockets), delivered, lost, duplicates)


def last_client_latencies(
    sockets: Sequence[Sequence[tuple[int, float]]], expected_seqs: range
) -> list[float]:
    """For each event every socket received, the latency of the last socket to get it."""
    latest: dict[int, float] = {}
    holders: dict[int, int] = {}
    for events in sockets:
        first_seen: dict[int, float] = {}
        for seq, latency in events:
            first_seen.setdefault(seq, latency)
        for seq, latency in first_seen.items():
            latest[seq] = max(latest.get(seq, latency), latency)
            holders[seq] = holders.get(seq, 0) + 1
    return [latest[s] for s in expected_seqs if holders.get(s) == len(sockets)]
