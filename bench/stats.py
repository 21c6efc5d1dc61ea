"""The benchmarks' statistics, written once: percentiles by linear interpolation between closest
ranks (numpy's default, and ``statistics.quantiles(method="inclusive")``)."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Iterable[float]) -> float:
    return percentile(values, 50)


def p90(values: Iterable[float]) -> float:
    return percentile(values, 90)
