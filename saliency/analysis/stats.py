"""Interval statistics used across the analyses.

- Wilson score interval for a proportion (:mod:`saliency.binomial`, on the ground floor).
- Newcombe's hybrid score interval for a difference of two independent proportions
  (Newcombe 1998, method 10), built from the two Wilson intervals.
- Percentile bootstrap intervals over images (Efron and Tibshirani 1993), seeded.
- McNemar's exact test for paired binary outcomes (a two-sided binomial test on the
  discordant pairs).
- Holm's step-down adjustment of p-values for family-wise error (Holm 1979).
- A two-level bootstrap for K models of the same images (several null models): images
  resampled, then models, per draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from saliency.binomial import wilson


def newcombe_difference(
    k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95
) -> tuple[float, float, float]:
    """``p1 - p2`` with Newcombe's hybrid score interval; NaNs when either n is 0."""
    if n1 == 0 or n2 == 0:
        return (math.nan, math.nan, math.nan)
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, confidence)
    l2, u2 = wilson(k2, n2, confidence)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (d, lower, upper)


def bootstrap(
    values: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimate and percentile interval of a statistic of rows ``values [n, ...]``,
    resampling rows with replacement ``n_boot`` times from ``seed``.

    ``statistic(sample [B, n, ...]) -> [B, ...]`` (default: the mean over rows, NaN-aware).
    Returns ``(estimate, low, high)``, each of shape ``values.shape[1:]``; NaN when n = 0.
    """
    values = np.asarray(values, dtype=np.float64)
    stat = statistic or (lambda x: np.nanmean(x, axis=1))
    if len(values) == 0:
        nan = np.full(values.shape[1:], np.nan)
        return nan, nan.copy(), nan.copy()
    estimate = stat(values[None])[0]
    draws = bootstrap_draws(values, stat, n_boot, seed)
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(draws, [alpha, 1 - alpha], axis=0)
    return estimate, low, high


def bootstrap_draws(
    values: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], n_boot: int, seed: int
) -> np.ndarray:
    """``statistic`` of ``n_boot`` resamples of the rows of ``values [n, ...]`` (with
    replacement, from ``seed``): ``[n_boot, ...]``. Resamples are drawn in chunks that bound
    the memory of one batch; :func:`bootstrap` and the max-t of
    :mod:`saliency.analysis.familywise` read the same draws for the same seed."""
    rng = np.random.default_rng(seed)
    draws = []
    chunk = max(1, 4_000_000 // max(1, values.size))  # bound the memory of one resample batch
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, len(values), size=(min(chunk, n_boot - start), len(values)))
        draws.append(statistic(values[idx]))
    return np.concatenate(draws)


def models_mean(n_models: int, width: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A :func:`bootstrap_draws` statistic for rows that hold K models' values side by side
    (``[B, n, K * W]`` -> ``[B, W]``): the mean over the resampled images (NaN-aware), then
    the mean over K models drawn with replacement, once per draw (``seed``), so that the
    draws carry the spread between models as well as between images. With one model it is
    the plain mean over images, draw for draw."""
    rng = np.random.default_rng([seed, 1])

    def stat(x: np.ndarray) -> np.ndarray:
        mean = np.nanmean(x, axis=1).reshape(len(x), n_models, width)
        if n_models > 1:
            pick = rng.integers(0, n_models, size=(len(x), n_models))
            mean = np.take_along_axis(mean, pick[:, :, None], axis=1)
        return mean.mean(axis=1)

    return stat


def side_by_side(values: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``[n, W]`` or ``[K, n, W]`` (K models' values for the same n images) -> the rows
    ``[n, K * W]`` that :func:`models_mean` reads, K and W."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        return values, 1, values.shape[1]
    k, n, w = values.shape
    return values.transpose(1, 0, 2).reshape(n, k * w), k, w


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs (b: right before
    and wrong after, c: the reverse): ``min(1, 2 P(X <= min(b, c)))`` with X ~ Bin(b + c, 1/2);
    1.0 when there are no discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given; NaNs stay NaN and do not
    count towards the family size)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out[order] = adjusted
    return out
