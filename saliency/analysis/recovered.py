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
