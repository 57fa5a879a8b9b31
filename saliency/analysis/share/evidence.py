"""Share, enrichment, ablation drop and their agreement, with one joint bootstrap per selection.

For the images of a selection (rows), with ``R`` regions:

- share of a region: the mean over images of its share of the image's positive attribution;
- area: the mean over images of its share of the pixels;
- enrichment: share / area, a ratio of means (stable where a region is tiny in some faces;
  1 means attribution in proportion to size);
- drop: the mean decrease of the true class's probability when the region is deleted
  (images where the region has zero area are left out, as in the ablation summary);
- agreement: Spearman's rank correlation, across regions, between drops and enrichments.

All are resampled together (images with replacement), so every interval, the agreement's
included, reflects the same resamples. Seeded: the same inputs give the same intervals.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from saliency.analysis.stats import bootstrap
from saliency.data.regions import REGIONS


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks (1 = smallest) along the last axis of ``x [..., R]``, ties sharing their average."""
    less = (x[..., None, :] < x[..., :, None]).sum(-1)
    equal = (x[..., None, :] == x[..., :, None]).sum(-1)
    return less + (equal + 1) / 2


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho between ``a [..., R]`` and ``b [..., R]`` along the last axis (average
    ranks for ties); NaN where either side has no spread."""
    ra, rb = average_ranks(a), average_ranks(b)
    ra = ra - ra.mean(-1, keepdims=True)
    rb = rb - rb.mean(-1, keepdims=True)
    den = np.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(-1) / np.where(den > 0, den, 1), np.nan)


def evidence(
    shares: np.ndarray,
    areas: np.ndarray,
    drops: np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Estimates and 95% intervals for ``shares``, ``areas`` (each ``[n, R]``, fractions)
    and optionally ``drops [n, R]`` (probability, NaN where not measured).

    Returns arrays keyed ``share``, ``enrichment``, ``drop`` (each ``[3, R]``: estimate,
    low, high), ``area [R]`` and ``spearman [3]`` (NaN without drops)."""
    r = shares.shape[1]
    d = np.full_like(shares, np.nan) if drops is None else drops
    values = np.concatenate([shares, areas, d], axis=1)

    def stat(x: np.ndarray) -> np.ndarray:  # [B, n, 3R] -> [B, 3R + 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            s = x[..., :r].mean(1)
            a = x[..., r : 2 * r].mean(1)
            enrich = np.where(a > 0, s / np.where(a > 0, a, 1), np.nan)
            dd = np.nanmean(x[..., 2 * r :], axis=1) if drops is not None else s * np.nan
        rho = spearman(dd, enrich) if drops is not None else np.full(len(x), np.nan)
        return np.concatenate([s, enrich, dd, rho[:, None]], axis=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns of drops
        est, lo, hi = bootstrap(values, stat, n_boot=n_boot, seed=seed)
    block = np.stack([est, lo, hi])
    return {
        "share": block[:, :r],
        "enrichment": block[:, r : 2 * r],
        "drop": block[:, 2 * r : 3 * r],
        "spearman": block[:, 3 * r],
        "area": areas.mean(0),
    }


def share_matrices(per: pd.DataFrame, regions=REGIONS) -> tuple[np.ndarray, np.ndarray]:
    """``[n, R]`` shares and areas from a per-image share table's ``share_*``/``area_*``."""
    return (
        per[[f"share_{r}" for r in regions]].to_numpy(float),
        per[[f"area_{r}" for r in regions]].to_numpy(float),
    )
