"""Percentiles shared by the latency benchmarks."""

from __future__ import annotations

import statistics


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (inclusive method); a single value is its own percentile."""
    values = sorted(values)
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
