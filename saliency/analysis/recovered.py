"""What "recovered" means: one statistical definition, used by every command.

The words of DESIGN.md, "What recovered means":

One definition, in `analysis/recovered.py`, used by every command. Method M recovers region
R when (1) deleting R gives the largest drop of the true class's probability and its
simultaneous 95% interval over the regions compared (bootstrap max-t: images resampled
jointly for every region; the interval and the adjusted p-value come from the same draws)
excludes zero; (2) R leads M's lift over its null: with s_R the mean share of M's positive
attribution in R, lambda_R = logit s_R(model) - logit s_R(null), R has the largest lambda
and the 95% lower bound of lambda_R minus the largest other lambda (paired bootstrap over
images) is above zero; and (3) the null's own verdict (1 and 2 on the null, its lift
measured over the floor) is nothing: otherwise M's verdict is withheld, and says why
(without the floor, `--no-floor`, the null's own verdict is not measured, and a note says
so). The null is the run's recipe trained on shuffled labels (RUN/null/), explained with the
same method, settings and images; re-initialized weights are reported beside it as a floor,
never for M's verdict. With K nulls (`saliency null --seeds K`: permutation seeds, the others
in RUN/nulls/), s_R(null) and the null's drops are the K nulls' averages, and each bootstrap
draw resamples the images and then the K nulls, so (2) and (3) are judged against the spread
between nulls as well as between images. Without a null, shares and enrichment are reported
and no verdict is claimed. Why: enrichment (share / area) favours small high-contrast
regions and share favours large ones; both assume a uniform null, and a method's own null is
not uniform (IG with a blur baseline gives the eyes 4-7x their area on models at chance); the
largest of six effects judged at an unadjusted 95% level leads by chance far more often than
5% of the time; and a finite label permutation leaves some real association that a
memorizing net can learn, different for each permutation. CAM-type maps on a grid under 6x6
are reported but not judged.

The definition before issue 19 (ablation leader = enrichment leader, the enrichment's lower
bound above the runner-up's estimate) is kept as :func:`enrichment_verdict`, for the
side-by-side comparison ``saliency validate`` reports; no command's verdict uses it.
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


def verdict(ablation: str | None, lifted: str | None, can_judge: bool = True) -> str | None:
    """The recovered region: the ablation leader and the lift leader (:func:`lift_leader`)
    are the same region, and the method's maps can be judged (:func:`judged`)."""
    if can_judge and ablation is not None and ablation == lifted:
        return ablation
    return None


def enrichment_verdict(
    ablation: str | None, enrichment: str | None, can_judge: bool = True
) -> str | None:
    """The definition before issue 19: the ablation leader is also the enrichment leader
    (:func:`share_leader`). Reported for comparison only."""
    return verdict(ablation, enrichment, can_judge)


NO_NULL = "no verdict without a null model: run `saliency null --run {run}`"


# -- the lift over a null model ----------------------------------------------------------
def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def _lift(model: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``model [B, R]``, ``null [B, R]`` mean shares -> ``[B, 2R]``: lambda and margin."""
    r = model.shape[1]
    lam = logit(model) - logit(null)
    others = np.stack([np.delete(lam, k, axis=1).max(axis=1) for k in range(r)], 1)
    return np.concatenate([lam, lam - others], axis=1)


def _lift_stat(n_regions: int, n_models: int, n_nulls: int, seed: int):
    """The statistic of one bootstrap batch ``[B, n, R (M + K)]`` (the M models' shares, then
    the K nulls'): images were resampled by the caller; each side's models are resampled
    here (:func:`saliency.analysis.stats.models_mean`) and averaged."""
    from saliency.analysis.stats import models_mean

    models = models_mean(n_models, n_regions, seed)
    nulls = models_mean(n_nulls, n_regions, seed + 7919)
    cut = n_models * n_regions

    def stat(x: np.ndarray) -> np.ndarray:
        return _lift(models(x[:, :, :cut]), nulls(x[:, :, cut:]))

    return stat


def lift(
    shares: np.ndarray, null_shares: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    """The lift of each region over the null, ``lambda_R = logit s_R(f) - logit s_R(f0)``,
    with ``s_R`` the mean over images of the share of positive attribution in R.

    ``shares`` and ``null_shares``: ``[n, R]`` for one model, or ``[K, n, R]`` for K (K
    nulls: shuffled-label models of other permutation seeds; or K nulls on the left, for
    the nulls' own lift over the floor), for the same images in the same order (same method
    and settings). With K models a side's ``s_R`` is their average, and each bootstrap draw
    resamples the images (paired: once for every model) and then that side's K models, so
    the interval carries the spread between nulls as well as between images; with one null
    the nulls' spread is unknown and the interval has the images' alone.
    Returns ``lambda`` and ``margin`` (``lambda_R`` minus the largest other lambda), each
    ``[3, R]``: estimate, low, high (95% percentile intervals)."""
    from saliency.analysis.stats import bootstrap_draws, side_by_side

    a, m, r = side_by_side(shares)
    b, k, r0 = side_by_side(null_shares)
    if a.shape[0] != b.shape[0] or r != r0:
        raise ValueError(
            f"shares {np.shape(shares)} and null shares {np.shape(null_shares)} differ"
        )
    if len(a) == 0:
        nan = np.full(r, np.nan)
        return {"lambda": np.stack([nan] * 3), "margin": np.stack([nan] * 3)}
    mean = lambda v, j: np.nanmean(v, 0).reshape(j, r).mean(0)[None]  # noqa: E731
    est = _lift(mean(a, m), mean(b, k))[0]
    draws = bootstrap_draws(np.concatenate([a, b], 1), _lift_stat(r, m, k, seed), n_boot, seed)
    lo, hi = np.nanquantile(draws, [0.025, 0.975], axis=0)
    both = np.stack([est, lo, hi])
    return {"lambda": both[:, :r], "margin": both[:, r:]}


def paired_all(
    images: Sequence[str], others: Sequence[Sequence[str]]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Positions ``i`` in ``images`` and ``j_k`` in each of ``others`` of the images present
    in every list, in the first list's order (keys: absolute paths)."""
    where = [{p: k for k, p in enumerate(o)} for o in others]
    i = np.array([k for k, p in enumerate(images) if all(p in w for w in where)], np.int64)
    return i, [np.array([w[images[k]] for k in i], dtype=np.int64) for w in where]


def lift_leader(regions: Sequence[str], lifted: dict[str, np.ndarray]) -> str | None:
    """The region with the largest lambda whose margin's 95% lower bound is above zero."""
    lam = lifted["lambda"][0]
    if len(lam) < 2 or np.isnan(lam).all():
        return None
    k = int(np.nanargmax(lam))
    return regions[k] if lifted["margin"][1, k] > 0 else None
