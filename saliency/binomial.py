"""Binomial proportions on the ground floor: the Wilson interval and the test for chance.

One definition serves training (early stopping and the learning-rate plateau wait while a
model is still at chance), evaluation (the warning that a model is at chance), the analysis
tables and the alignment skip rates. Wilson 1927; Newcombe 1998, method 3.
"""

from __future__ import annotations

import math
from statistics import NormalDist


def z_value(confidence: float = 0.95) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials; ``(nan, nan)`` when n = 0."""
    if n == 0:
        return (math.nan, math.nan)
    z = z_value(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact bounds at the extremes
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def at_chance(correct: int, n: int, chance: float, confidence: float = 0.95) -> bool:
    """Whether ``correct`` of ``n`` is indistinguishable from the accuracy ``chance`` (the
    majority class's share, which a constant prediction reaches): the accuracy's Wilson
    interval reaches down to it. True when ``n`` is 0."""
    if n == 0:
        return True
    return wilson(correct, n, confidence)[0] <= chance
