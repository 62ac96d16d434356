"""Latency and error-rate statistics, and what counts as a performance regression."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MIN_BASELINE_HOURS = 24  # a day of history before a baseline means anything
MIN_RECENT_RESULTS = 3


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class WindowStats:
    results: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    latency_sum_ms: float
    latency_count: int

    @property
    def error_rate(self) -> float | None:
        return self.failures / self.results if self.results else None


def window_stats(rows: Iterable[tuple[str, float | None]]) -> WindowStats:
    """Stats of (status, latency) pairs; not-evaluable results do not count."""
    latencies: list[float] = []
    results = failures = 0
    for status, latency in rows:
        if status == "not_evaluable":
            continue
        results += 1
        failures += status == "fail"
        if latency is not None:
            latencies.append(latency)
    return WindowStats(results, failures, percentile(latencies, 50), percentile(latencies, 95),
                       max(latencies) if latencies else None, sum(latencies), len(latencies))


def is_regression(recent: WindowStats, baseline_p95_ms: float | None, baseline_hours: int, factor: float) -> bool:
    """p95 over the last hour above ``factor`` x the 7-day baseline, with enough data on both sides."""
    return (
        baseline_p95_ms is not None and baseline_p95_ms > 0 and baseline_hours >= MIN_BASELINE_HOURS
        and recent.p95_ms is not None and recent.latency_count >= MIN_RECENT_RESULTS
        and recent.p95_ms > factor * baseline_p95_ms
    )
