"""Decidability d': how far apart a classifier's scores for the two classes lie.

    d' = (mu_1 - mu_0) / sqrt((s_0^2 + s_1^2) / 2)

``mu_k`` and ``s_k^2`` are the mean and the sample variance (``ddof = 1``) of the scores of
the images of class ``k``. The score is the log-odds of ``classes[1]`` (logit units: a
one-logit model's logit itself, a two-logit model's ``z_1 - z_0``), so the decision rule
is "score > 0" and d' is the distance between the two classes' mean scores in units of
their pooled standard deviation: dimensionless, positive when class 1 scores higher, 0 when
the means coincide (Green and Swets 1966; Daugman's decidability index). A group's d'
compares its own two cells (for group AA: the scores of AA_M against those of AA_F).
It needs at least two images of each class; NaN otherwise, and NaN when both classes'
scores are constant.

Intervals are percentile bootstrap intervals (Efron and Tibshirani 1993) stratified by
class: each resample draws ``n_0`` images with replacement from class 0 and ``n_1`` from
class 1, so both classes keep their size. A paired comparison (before and after a region is
removed) resamples the same images for both, and its interval is that of the per-draw
difference. Resamples whose variance is zero (tiny classes) give NaN and are left out.
Numpy only.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = [
    "class1_log_odds",
    "dprime",
    "dprime_draws",
    "dprime_interval",
    "paired_dprime",
    "separability_rows",
]


def class1_log_odds(columns, classes: list[str]) -> np.ndarray:
    """The score d' is taken on, from a predictions table (``columns``: a data frame or a
    mapping of its columns): the one logit (``logit``) of a one-logit model, else
    ``logit_<classes[1]> - logit_<classes[0]>``."""
    if "logit" in columns:
        return np.asarray(columns["logit"], np.float64)
    z = [np.asarray(columns[f"logit_{c}"], np.float64) for c in classes[:2]]
    return z[1] - z[0]


def _dprime(s0: np.ndarray, s1: np.ndarray, axis: int = 0) -> np.ndarray:
    """d' along ``axis`` of two score arrays (NaN where the pooled variance is 0)."""
    pooled = (s0.var(axis=axis, ddof=1) + s1.var(axis=axis, ddof=1)) / 2
    diff = s1.mean(axis=axis) - s0.mean(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pooled > 0, diff / np.sqrt(pooled), np.nan)


def dprime(scores_0, scores_1) -> float:
    """d' of class 1's scores against class 0's (see the module docstring); NaN when either
    class has fewer than two scores or both are constant."""
    s0, s1 = np.asarray(scores_0, np.float64), np.asarray(scores_1, np.float64)
    if len(s0) < 2 or len(s1) < 2:
        return math.nan
    return float(_dprime(s0, s1))


def dprime_draws(x0: np.ndarray, x1: np.ndarray, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """d' of ``n_boot`` stratified resamples: ``x0 [n_0, W]`` and ``x1 [n_1, W]`` hold W
    score columns of the same images (before and after, say); each draw resamples the rows
    of each class once and takes d' of every column on those rows. Returns ``[n_boot, W]``."""
    x0, x1 = np.asarray(x0, np.float64), np.asarray(x1, np.float64)
    n0, n1, width = len(x0), len(x1), x0.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, width))
    chunk = max(1, 2_000_000 // max(1, (n0 + n1) * width))  # bound one batch's memory
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        s0 = x0[rng.integers(0, n0, size=(b, n0))]  # [b, n_0, W]
        s1 = x1[rng.integers(0, n1, size=(b, n1))]
        out[start : start + b] = _dprime(s0, s1, axis=1)
    return out


def _percentiles(draws: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = (1 - confidence) / 2
    with warnings.catch_warnings():  # a column of NaN draws (no spread) gives NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(draws, [alpha, 1 - alpha], axis=0)
    return low, high


def dprime_interval(
    scores_0, scores_1, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """``(d', low, high)``: d' with its stratified percentile bootstrap interval; NaNs when
    either class has fewer than two scores."""
    s0, s1 = np.asarray(scores_0, np.float64), np.asarray(scores_1, np.float64)
    est = dprime(s0, s1)
    if math.isnan(est) and (len(s0) < 2 or len(s1) < 2):
        return (math.nan, math.nan, math.nan)
    low, high = _percentiles(dprime_draws(s0[:, None], s1[:, None], n_boot, seed), confidence)
    return (est, float(low[0]), float(high[0]))


def paired_dprime(
    before, after, positive, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> dict[str, float]:
    """d' of the scores ``before`` and ``after`` (one pair per image; ``positive``: the image
    is of class 1) and the change ``after - before``, each with a stratified percentile
    bootstrap interval from the same resamples of the images. Keys ``dprime_before``,
    ``dprime_after``, ``dprime_change`` and each with ``_low`` and ``_high``; all NaN when a
    class has fewer than two images."""
    x = np.stack([np.asarray(before, np.float64), np.asarray(after, np.float64)], axis=1)
    pos = np.asarray(positive, bool)
    keys = [f"dprime_{k}{s}" for k in ("before", "after", "change") for s in ("", "_low", "_high")]
    if (~pos).sum() < 2 or pos.sum() < 2:
        return dict.fromkeys(keys, math.nan)
    est = _dprime(x[~pos], x[pos])
    draws = dprime_draws(x[~pos], x[pos], n_boot, seed)
    draws = np.concatenate([draws, draws[:, 1:] - draws[:, :1]], axis=1)
    low, high = _percentiles(draws, confidence)
    values = [est[0], est[1], est[1] - est[0]]
    out = {}
    for k, name in enumerate(("before", "after", "change")):
        out[f"dprime_{name}"] = float(values[k])
        out[f"dprime_{name}_low"], out[f"dprime_{name}_high"] = float(low[k]), float(high[k])
    return out


def separability_rows(
    scores, positive, groups, classes: list[str], n_boot: int = 2000, seed: int = 0,
    confidence: float = 0.95,
) -> list[dict]:  # fmt: skip
    """d' with its interval for all images and for each subgroup (a group's two cells):
    one dict per selection with ``selection``, ``kind`` (all or group), the classes
    (``class_0``, ``class_1``), ``n_0``, ``n_1``, ``mean_0``, ``mean_1``, ``sd_0``, ``sd_1``
    (sample standard deviations), ``dprime``, ``ci_low``, ``ci_high``. ``scores``: the
    log-odds of ``classes[1]`` per image; ``groups``: each image's subgroup ('' for none)."""
    scores = np.asarray(scores, np.float64)
    pos = np.asarray(positive, bool)
    groups = np.asarray(groups, dtype=object).astype(str)
    present = sorted(set(groups.tolist()) - {""})
    rows = []
    for name, kind, mask in [("all", "all", np.ones(len(scores), bool)),
                             *[(g, "group", groups == g) for g in present]]:  # fmt: skip
        s0, s1 = scores[mask & ~pos], scores[mask & pos]
        est, low, high = dprime_interval(s0, s1, n_boot, seed, confidence)
        stats = {}
        for k, s in enumerate((s0, s1)):
            stats[f"mean_{k}"] = float(s.mean()) if len(s) else math.nan
            stats[f"sd_{k}"] = float(s.std(ddof=1)) if len(s) > 1 else math.nan
        rows.append({"selection": name, "kind": kind, "class_0": classes[0],
                     "class_1": classes[1], "n_0": len(s0), "n_1": len(s1), **stats,
                     "dprime": est, "ci_low": low, "ci_high": high})  # fmt: skip
    return rows
