"""Simultaneous intervals and adjusted p-values for a family of mean effects (max-t).

Which region matters is decided by comparing several regions at once, so a region is
called the leader only when its effect is clear of zero *for the whole family*: the
largest of six effects with an unadjusted 95% interval excludes zero by chance far more
often than 5% of the time. The rule here is the bootstrap max-t (single step, studentized
by each effect's bootstrap standard error; Westfall & Young 1993, Romano & Wolf 2005):

- images are resampled jointly for every effect in the family (their dependence is kept);
- ``se_k`` is the standard deviation of effect k's bootstrap draws and
  ``T_b = max_k |theta*_bk - theta_k| / se_k`` the largest studentized deviation of draw b;
- ``c`` is the ``confidence`` quantile of ``T``: the intervals ``theta_k +- c se_k`` cover
  every true effect at once with probability ``confidence``;
- the adjusted p-value of "effect k is zero" is the share of draws with
  ``T_b >= |theta_k| / se_k`` (with the usual +1), so an interval excludes zero exactly when
  its p-value is below ``1 - confidence`` (up to the draws' granularity): one test, one
  bootstrap.

An effect with no spread (every image the same, e.g. exactly zero) has ``se = 0``: its
interval is the point and it does not enter ``T``; its p-value is 1 when it is zero and the
smallest possible otherwise.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from saliency.analysis.stats import bootstrap_draws, models_mean, side_by_side

ADJUSTMENT = "max-t"


@dataclass(frozen=True)
class FamilyWise:
    """Per effect ``[K]``: estimate, simultaneous interval ``low``/``high``, adjusted ``p``;
    ``critical`` is ``c`` and ``size`` the number of effects with spread (the family)."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p: np.ndarray
    critical: float
    size: int

    def stacked(self) -> np.ndarray:
        """``[3, K]``: estimate, low, high (the layout of the other bootstrap helpers)."""
        return np.stack([self.estimate, self.low, self.high])


def describe(size: int, what: str = "regions", confidence: float = 0.95) -> str:
    """The adjustment in words, for tables and captions."""
    return (f"simultaneous {confidence:.0%} intervals and adjusted p-values: bootstrap "
            f"{ADJUSTMENT} over {size} {what}")  # fmt: skip


def max_t(
    values: np.ndarray, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> FamilyWise:
    """Simultaneous inference on the column means of ``values [n, K]`` (NaN: the image has
    no value for that effect, left out of its mean). See the module docstring.

    ``values [M, n, K]``: M models' values for the same images (e.g. the drops of M null
    models); the effect is their average, and each draw resamples the images and then the
    M models (:func:`saliency.analysis.stats.models_mean`), so the intervals carry the
    spread between the models too. ``M = 1`` gives the two-dimensional answer exactly."""
    rows, m, k = side_by_side(values)
    if len(rows) == 0 or k == 0:
        nan = np.full(k, np.nan)
        return FamilyWise(nan, nan.copy(), nan.copy(), nan.copy(), float("nan"), 0)
    with warnings.catch_warnings():  # all-NaN columns: an effect no (resampled) image has
        warnings.simplefilter("ignore", RuntimeWarning)
        estimate = np.nanmean(rows, axis=0).reshape(m, k).mean(axis=0)
        draws = bootstrap_draws(rows, models_mean(m, k, seed), n_boot, seed)  # [B, K]
    return from_draws(estimate, draws, confidence)


def from_draws(estimate: np.ndarray, draws: np.ndarray, confidence: float = 0.95) -> FamilyWise:
    """The max-t of the module docstring from any bootstrap: ``estimate [K]`` and ``draws
    [B, K]`` of the same K effects, resampled jointly (NaN: an effect a draw could not
    measure). :func:`max_t` is this on column means; other effects (a cell's mean minus the
    rest's) give their own draws."""
    estimate, draws = np.asarray(estimate, float), np.asarray(draws, float)
    k, n_boot = len(estimate), len(draws)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        se = np.nanstd(draws, axis=0, ddof=1)
        spread = np.isfinite(se) & (se > 1e-12 * np.maximum(1.0, np.abs(estimate)))
        if spread.any():
            dev = np.abs(draws[:, spread] - estimate[spread]) / se[spread]
            t_max = np.nanmax(dev, axis=1)
            t_max = t_max[np.isfinite(t_max)]  # a draw without any of these images
            critical = float(np.quantile(t_max, confidence)) if len(t_max) else float("nan")
        else:
            t_max, critical = np.zeros(0), 0.0
    half = np.where(spread, critical * np.nan_to_num(se), 0.0)
    low, high = estimate - half, estimate + half
    p = np.ones(k)
    for j in range(k):
        if not np.isfinite(estimate[j]):
            p[j] = np.nan
        elif spread[j]:
            p[j] = (1 + np.sum(t_max >= abs(estimate[j]) / se[j])) / (1 + len(t_max))
        elif estimate[j] != 0:
            p[j] = 1 / (1 + n_boot)
    low[~np.isfinite(estimate)] = high[~np.isfinite(estimate)] = np.nan
    return FamilyWise(estimate, low, high, p, critical, int(spread.sum()))
