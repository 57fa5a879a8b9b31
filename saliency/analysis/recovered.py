"""What "recovered" means: one statistical definition, used by every command.

A region is *recovered* when both independent answers single it out:

- ablation: deleting it lowers the true class's probability the most of all regions, and
  that drop's 95% bootstrap interval excludes zero;
- share: its enrichment (share of positive attribution / share of area) is the highest, and
  the lower bound of its 95% interval is above the runner-up's estimate.

Ablation effects come from ``delete`` mode (keep mode asks a different question). Where a
method's maps live on a coarse grid (CAM, Grad-CAM below 6x6 cells, DESIGN.md "Map
resolution") the share half is reported but not judged, so no recovery is claimed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_GRID = 6  # cells per side below which no claim is made about where a grid map's heat is


def ablation_leader(regions: Sequence[str], effect: np.ndarray, low: np.ndarray) -> str | None:
    """The region with the largest drop ``effect [R]`` whose interval's lower bound ``low
    [R]`` is above zero; ``None`` when the largest drop's interval includes zero."""
    effect = np.asarray(effect, dtype=float)
    if len(effect) == 0 or np.isnan(effect).all():
        return None
    k = int(np.nanargmax(effect))
    return regions[k] if low[k] > 0 else None


def share_leader(regions: Sequence[str], enrichment: np.ndarray, low: np.ndarray) -> str | None:
    """The region with the highest enrichment ``[R]`` whose lower bound ``low [R]`` is above
    every other region's estimate; ``None`` otherwise."""
    enrichment = np.asarray(enrichment, dtype=float)
    if len(enrichment) < 2 or np.isnan(enrichment).all():
        return None
    k = int(np.nanargmax(enrichment))
    others = np.delete(enrichment, k)
    runner_up = np.nanmax(others) if np.isfinite(others).any() else -np.inf
    return regions[k] if low[k] > runner_up else None


def judged(meta: dict) -> tuple[bool, str]:
    """Whether a method's share can carry a claim: maps upsampled from the last block's grid
    (their meta.json records the upsampling) need ``MIN_GRID`` cells a side; pixel maps
    (IG) always can. Returns ``(ok, reason)``; ``reason`` is empty when ok."""
    grid = meta.get("grid")
    if meta.get("upsampling") and grid and min(grid) < MIN_GRID:
        g = "x".join(str(v) for v in grid)
        return (
            False,
            f"{meta.get('method', 'maps')} on a {g} grid (< {MIN_GRID}x{MIN_GRID}): not judged",
        )
    return True, ""


def verdict(ablation: str | None, share: str | None, can_judge: bool = True) -> str | None:
    """The recovered region: both criteria name the same one (and the share is judged)."""
    if can_judge and ablation is not None and ablation == share:
        return ablation
    return None


# -- the lift over a null model (issue 19's definition; used once RUN/null/ exists) --------
def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def _lift_stat(n_regions: int):
    def stat(x: np.ndarray) -> np.ndarray:  # [B, n, 2R] -> [B, 2R]: lambda, margin
        mean = np.nanmean(x, axis=1)
        lam = logit(mean[:, :n_regions]) - logit(mean[:, n_regions:])
        others = np.stack([np.delete(lam, k, axis=1).max(axis=1) for k in range(n_regions)], 1)
        return np.concatenate([lam, lam - others], axis=1)

    return stat


def lift(
    shares: np.ndarray, null_shares: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    """The lift of each region over the null, ``lambda_R = logit s_R(f) - logit s_R(f0)``,
    with ``s_R`` the mean over images of the share of positive attribution in R.

    ``shares``, ``null_shares``: ``[n, R]`` for the same images in the same order (the
    model's and the null model's maps, same method and settings). The bootstrap is paired:
    each resample draws images once, for both models. Returns ``lambda`` and ``margin``
    (``lambda_R`` minus the largest other lambda), each ``[3, R]``: estimate, low, high."""
    from saliency.analysis.stats import bootstrap

    shares, null_shares = np.asarray(shares, float), np.asarray(null_shares, float)
    if shares.shape != null_shares.shape or shares.ndim != 2:
        raise ValueError(f"shares {shares.shape} and null shares {null_shares.shape} differ")
    r = shares.shape[1]
    est, lo, hi = bootstrap(
        np.concatenate([shares, null_shares], 1), _lift_stat(r), n_boot=n_boot, seed=seed
    )
    both = np.stack([est, lo, hi])
    return {"lambda": both[:, :r], "margin": both[:, r:]}


def lift_leader(regions: Sequence[str], lifted: dict[str, np.ndarray]) -> str | None:
    """The region with the largest lambda whose margin's 95% lower bound is above zero."""
    lam = lifted["lambda"][0]
    if len(lam) < 2 or np.isnan(lam).all():
        return None
    k = int(np.nanargmax(lam))
    return regions[k] if lifted["margin"][1, k] > 0 else None
