"""Each cell's gap (its accuracy minus the rest's), with and without the attributes.

- ``gap``: the raw accuracy difference with Newcombe's interval.
- ``ame`` and ``ame_adjusted``: the cell's average marginal effect on P(correct) from the
  penalized logistic regression of correctness on the cell indicators alone, and on the
  indicators and the standardized attributes (:mod:`.logistic`); ``change`` is adjusted
  minus unadjusted. Intervals: a paired percentile bootstrap: each draw resamples the images
  within each cell (so every cell keeps its size), refits both models on the same draw and
  takes both AMEs and their difference.
- ``matched_gap``: the gap on a test subset matched on the attributes (Bhatta et al. 2023
  compare groups on test sets balanced for hair): each attribute is cut at its quantiles into
  ``match_bins`` bins, the bins' combinations are the strata, and in every stratum holding
  both the cell and the rest, as many images of each are kept as the smaller side has (drawn
  at random, seeded); the gap of the kept images with Newcombe's interval.

A change whose interval excludes zero says the attributes account for part of the gap: once
images with the same attributes are compared, the cell differs from the rest by less (or by
more) than it does overall.

Limits. The attributes enter the logit linearly: an effect with a threshold (errors only
once hair reaches the brows) is captured in part, so the adjusted gap shrinks towards zero
without reaching it. A cell whose images are all right (or all wrong) has no bootstrap
variance of its own, so the AMEs' intervals are too narrow on its side; the raw gap's
Newcombe interval is not. Matching on many attributes and bins keeps few images (the
``matched_n`` column says how many).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from saliency.analysis.attributes.logistic import cell_ames, design, fit
from saliency.analysis.stats import newcombe_difference

DRAW_CELLS = 1_000_000  # resample weights held at once: draws x images
COLUMNS = (
    "cell", "n", "n_rest", "accuracy", "accuracy_rest", "gap", "gap_low", "gap_high",
    "ame", "ame_low", "ame_high", "ame_adjusted", "ame_adjusted_low", "ame_adjusted_high",
    "change", "change_low", "change_high", "change_excludes_zero", "failed_draws",
    "matched_n", "matched_gap", "matched_gap_low", "matched_gap_high",
    "matched_excludes_zero", "attributes", "penalty",
)  # fmt: skip


def usable(per: pd.DataFrame, attributes: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The rows with every attribute measured, and the attributes that vary among them
    (a constant attribute has no effect to estimate)."""
    rows = per[np.isfinite(per[attributes].to_numpy(np.float64)).all(axis=1)]
    rows = rows.reset_index(drop=True)
    varying = [a for a in attributes if len(rows) > 1 and rows[a].std() > 0]
    return rows, varying


def standardized(rows: pd.DataFrame, attributes: list[str]) -> np.ndarray:
    """``[n, q]``: each attribute minus its mean, over its standard deviation."""
    z = rows[attributes].to_numpy(np.float64)
    return (z - z.mean(0)) / z.std(0, ddof=1)


def _resample_weights(cells: np.ndarray, n_cells: int, draws: int, rng) -> np.ndarray:
    """``[draws, n]``: how often each image is drawn when each cell is resampled with
    replacement to its own size."""
    out = np.zeros((draws, len(cells)))
    for k in range(n_cells):
        idx = np.flatnonzero(cells == k)
        out[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx)), size=draws)
    return out


def adjusted_ames(
    cells: np.ndarray,
    n_cells: int,
    y: np.ndarray,
    z: np.ndarray,
    penalty: str = "firth",
    ridge: float = 1.0,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unadjusted and adjusted AMEs of every cell (``[K]`` each, the full data's fits) and
    their bootstrap draws ``[n_boot, 2, K]`` (NaN where a fit did not converge)."""
    x0, x1 = design(cells, n_cells), design(cells, n_cells, z)
    estimates = []
    for x in (x0, x1):
        beta, _ = fit(x, y, penalty=penalty, ridge=ridge)
        estimates.append(cell_ames(beta, x, cells, n_cells)[0])
    rng = np.random.default_rng([seed, 0xA77])
    chunk = max(1, DRAW_CELLS // max(len(y), 1))
    draws = []
    for start in range(0, n_boot, chunk):
        m = _resample_weights(cells, n_cells, min(chunk, n_boot - start), rng)
        pair = []
        for x in (x0, x1):
            beta, _ = fit(x, y, m, penalty=penalty, ridge=ridge)
            pair.append(cell_ames(beta, x, cells, n_cells, m))
        draws.append(np.stack(pair, axis=1))
    both = np.concatenate(draws) if draws else np.zeros((0, 2, n_cells))
    return estimates[0], estimates[1], both


def quantile_bins(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin index of each value (0 .. len(edges) - 2) and the edges: the values' quantiles
    at ``0, 1/bins, ..., 1``, repeated edges merged (ties)."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return np.zeros(len(values), int), np.array([edges[0], edges[0]])
    return np.searchsorted(edges[1:-1], values, side="right"), edges


def matched_gap(
    rows: pd.DataFrame, attributes: list[str], cell: str, bins: int, seed: int
) -> dict[str, float]:
    """The gap of ``cell`` against the rest on the subset matched on the attributes' bins
    (the module docstring): kept images per side, the gap and its Newcombe interval."""
    strata = np.zeros(len(rows), np.int64)
    for a in attributes:
        idx, edges = quantile_bins(rows[a].to_numpy(np.float64), bins)
        strata = strata * (len(edges) + 1) + idx
    inside = (rows["cell"] == cell).to_numpy()
    correct = rows["correct"].to_numpy(bool)
    rng = np.random.default_rng([seed, 0x3A7C4])
    keep_c, keep_r = [], []
    for s in np.unique(strata):
        c = np.flatnonzero((strata == s) & inside)
        r = np.flatnonzero((strata == s) & ~inside)
        k = min(len(c), len(r))
        if k:
            keep_c.append(rng.choice(c, k, replace=False))
            keep_r.append(rng.choice(r, k, replace=False))
    kc = np.concatenate(keep_c) if keep_c else np.zeros(0, int)
    kr = np.concatenate(keep_r) if keep_r else np.zeros(0, int)
    d, lo, hi = newcombe_difference(int(correct[kc].sum()), len(kc), int(correct[kr].sum()),
                                    len(kr))  # fmt: skip
    return {"matched_n": len(kc), "matched_gap": d, "matched_gap_low": lo,
            "matched_gap_high": hi}  # fmt: skip


def cell_gaps(
    per: pd.DataFrame,
    attributes: list[str],
    penalty: str = "firth",
    ridge: float = 1.0,
    n_boot: int = 2000,
    seed: int = 0,
    match_bins: int = 3,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per cell of ``per`` (columns ``cell``, ``correct`` and the attributes): the
    raw gap, the unadjusted and adjusted AMEs, their change and the matched gap, with
    intervals (module docstring); ``attributes`` names the attributes the adjusted model
    used (the measured ones that vary). Empty with fewer than two cells."""
    rows, used = usable(per, attributes)
    names = sorted(set(rows["cell"]))
    if len(names) < 2:
        return pd.DataFrame(columns=list(COLUMNS))
    cells = rows["cell"].map({c: k for k, c in enumerate(names)}).to_numpy()
    y = rows["correct"].to_numpy(bool).astype(np.float64)
    z = standardized(rows, used)
    ame0, ame1, draws = adjusted_ames(cells, len(names), y, z, penalty, ridge, n_boot, seed)
    alpha = (1 - confidence) / 2
    diff = draws[:, 1] - draws[:, 0]
    out = []
    for k, name in enumerate(names):
        inside = cells == k
        kc, nc = int(y[inside].sum()), int(inside.sum())
        kr, nr = int(y[~inside].sum()), int((~inside).sum())
        gap, lo, hi = newcombe_difference(kc, nc, kr, nr, confidence)
        row = {"cell": name, "n": nc, "n_rest": nr, "accuracy": kc / nc,
               "accuracy_rest": kr / nr if nr else np.nan, "gap": gap, "gap_low": lo,
               "gap_high": hi}  # fmt: skip
        for key, est, d in (("ame", ame0[k], draws[:, 0, k]),
                            ("ame_adjusted", ame1[k], draws[:, 1, k]),
                            ("change", ame1[k] - ame0[k], diff[:, k])):  # fmt: skip
            row[key] = est
            row[f"{key}_low"], row[f"{key}_high"] = _interval(d, alpha)
        row["change_excludes_zero"] = bool(row["change_low"] > 0 or row["change_high"] < 0)
        row["failed_draws"] = int(np.isnan(draws[:, :, k]).any(axis=1).sum())
        row.update(matched_gap(rows, used, name, match_bins, seed))
        row["matched_excludes_zero"] = bool(
            row["matched_gap_low"] > 0 or row["matched_gap_high"] < 0
        )
        row["attributes"] = " ".join(used)
        row["penalty"] = penalty
        out.append(row)
    return pd.DataFrame(out, columns=list(COLUMNS))


def _interval(draws: np.ndarray, alpha: float) -> tuple[float, float]:
    ok = draws[np.isfinite(draws)]
    if not len(ok):
        return (np.nan, np.nan)
    lo, hi = np.quantile(ok, [alpha, 1 - alpha])
    return float(lo), float(hi)
