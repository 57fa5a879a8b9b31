"""Explanation quality per cell: is a method as faithful and as sensitive to the weights on
one demographic cell as on the rest?

From per-image validation numbers (the deletion and insertion areas, the cascading
randomization's similarities with every block re-initialized), for each method and measure:

- the mean over all images and over each cell's images, with 95% percentile intervals;
- each cell's mean minus the mean of the other images (``vs_rest``), with simultaneous 95%
  intervals and adjusted p-values over the cells (bootstrap max-t,
  :func:`saliency.analysis.familywise.from_draws`): a cell is called different only when
  its interval excludes zero for the whole family of cells.

A cell with fewer than ``MIN_IMAGES`` images (with a value) is reported with its mean and
interval but not judged: it has no ``vs_rest`` and is not in the family.

One bootstrap resamples the images jointly (all cells at once) for every number of a table,
so the cells' means, their differences and the all-images mean come from the same draws. The
cell means recombine to the all-images mean exactly: ``sum_c n_c mean_c / n`` (images with a
value only).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from saliency.analysis.familywise import describe, from_draws
from saliency.analysis.stats import bootstrap_draws

MIN_IMAGES = 8  # images a cell needs for its cell-vs-rest difference to be judged


def adjustment(n_cells: int) -> str:
    """The cell-vs-rest adjustment in words."""
    if n_cells == 0:
        return f"cell vs rest: not judged (no cell has {MIN_IMAGES} images)"
    return "cell vs rest: " + describe(n_cells, "cells")


def _cell_stat(n_cells: int):
    """``[B, n, 2]`` (cell code, value) -> ``[B, 1 + 3C]``: the all-images mean, each cell's
    mean, each cell's mean minus the others', and that difference's standard error
    (``sqrt(s_c^2 / n_c + s_r^2 / n_r)``, for the studentized max-t; NaN values left out)."""

    def stat(x: np.ndarray) -> np.ndarray:
        code, v = x[:, :, 0], x[:, :, 1]
        ok = np.isfinite(v)
        v0 = np.where(ok, v, 0.0)
        total_n, total_s, total_q = ok.sum(1), v0.sum(1), (v0 * v0).sum(1)
        out = [total_s / np.where(total_n > 0, total_n, np.nan)]
        means, rests, ses = [], [], []
        for c in range(n_cells):
            m = (code == c) & ok
            n_c, s_c, q_c = m.sum(1), (v0 * m).sum(1), (v0 * v0 * m).sum(1)
            n_r, s_r, q_r = total_n - n_c, total_s - s_c, total_q - q_c
            mean_c = s_c / np.where(n_c > 0, n_c, np.nan)
            mean_r = s_r / np.where(n_r > 0, n_r, np.nan)
            var_c = (q_c - n_c * mean_c**2) / np.where(n_c > 1, n_c - 1, np.nan)
            var_r = (q_r - n_r * mean_r**2) / np.where(n_r > 1, n_r - 1, np.nan)
            means.append(mean_c)
            rests.append(mean_c - mean_r)
            ses.append(np.sqrt(np.maximum(var_c, 0) / n_c + np.maximum(var_r, 0) / n_r))
        return np.stack(out + means + rests + ses, axis=1)

    return stat


def cell_summary(
    values: np.ndarray,
    cells: Sequence[str],
    order: Sequence[str],
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    min_images: int = MIN_IMAGES,
) -> pd.DataFrame:
    """One measure's table: ``values [n]`` per image (NaN: no value) and ``cells [n]`` (each
    image's cell); ``order`` names the cells to report, in order. Rows: ``all`` then each
    cell, with ``n``, ``mean``, ``low``, ``high`` and, for cells, ``vs_rest``,
    ``vs_rest_low``, ``vs_rest_high`` (simultaneous over the cells), ``p_fw`` and
    ``differs`` (the simultaneous interval excludes zero), for cells of at least
    ``min_images`` images (the family)."""
    values = np.asarray(values, dtype=np.float64)
    cells = np.asarray(cells, dtype=object)
    order = [c for c in order if (cells == c).any()]
    code = np.array([order.index(c) if c in order else -1 for c in cells], dtype=np.float64)
    rows = np.column_stack([code, values])
    stat = _cell_stat(len(order))
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = stat(rows[None])[0]
        draws = bootstrap_draws(rows, stat, n_boot, seed) if len(rows) else np.empty((0, 0))
    alpha = (1 - confidence) / 2
    if len(draws):
        with np.errstate(invalid="ignore"):
            low, high = np.nanquantile(draws, [alpha, 1 - alpha], axis=0)
    else:
        low = high = np.full_like(estimate, np.nan)
    c = len(order)
    ok = np.isfinite(values)
    counts = np.array([int((ok & (cells == name)).sum()) for name in order])
    judged = np.flatnonzero(counts >= min_images)
    diffs, ses = (slice(1 + c, 1 + 2 * c), slice(1 + 2 * c, 1 + 3 * c))
    if len(draws):
        d, d_se = draws[:, diffs][:, judged], draws[:, ses][:, judged]
    else:
        d = d_se = np.zeros((0, len(judged)))
    fw = from_draws(estimate[diffs][judged], d, confidence, estimate[ses][judged], d_se)
    out = [{"cell": "all", "n": int(ok.sum()), "mean": estimate[0], "low": low[0],
            "high": high[0]}]  # fmt: skip
    for j, name in enumerate(order):
        row = {"cell": name, "n": int(counts[j]), "mean": estimate[1 + j], "low": low[1 + j],
               "high": high[1 + j], "vs_rest": np.nan, "vs_rest_low": np.nan,
               "vs_rest_high": np.nan, "p_fw": np.nan, "differs": None}  # fmt: skip
        if j in judged:
            k = int(np.flatnonzero(judged == j)[0])
            row |= {"vs_rest": fw.estimate[k], "vs_rest_low": fw.low[k],
                    "vs_rest_high": fw.high[k], "p_fw": fw.p[k],
                    "differs": bool(fw.low[k] > 0 or fw.high[k] < 0)}  # fmt: skip
        out.append(row)
    return pd.DataFrame(out)


def cell_validation(
    per_image: pd.DataFrame,
    measures: Sequence[str],
    order: Sequence[str],
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """The long table of the module docstring: ``per_image`` has ``method``, ``cell`` and
    one column per measure; returns one :func:`cell_summary` block per method and measure
    (columns ``method``, ``measure`` first), with the adjustment named."""
    blocks = []
    for method, t in per_image.groupby("method", sort=False):
        for m in measures:
            if m not in t.columns:
                continue
            b = cell_summary(t[m].to_numpy(float), list(t["cell"]), order, n_boot, seed)
            blocks.append(b.assign(method=method, measure=m))
    if not blocks:
        return pd.DataFrame()
    out = pd.concat(blocks, ignore_index=True)
    cols = ["method", "measure"] + [c for c in out.columns if c not in ("method", "measure")]
    judged = out["differs"].notna().groupby([out["method"], out["measure"]]).sum()
    return out[cols].assign(adjustment=adjustment(int(judged.max())))


RANDOMIZATION_MEASURES = ("spearman", "spearman_abs", "ssim")
CURVE_MEASURES = ("deletion_auc", "insertion_auc")


def validation_by_cell(
    randomization: pd.DataFrame,
    areas: dict[str, tuple[np.ndarray, np.ndarray]],
    cells: Sequence[str],
    positions: Sequence[int],
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``saliency validate``'s per-cell tables from its per-image results: ``randomization``
    (method, step, image, cell, the similarity measures) at each
    method's last step (every block re-initialized, the step the verdict reads), and the
    deletion and insertion ``areas`` per method (``[n]`` each, the first n of ``cells``;
    the ``random`` order is left out). ``positions``: each image's row in the maps' index.
    Returns the long table of :func:`cell_validation` and the per-image curve areas
    (method, image, map_index, cell, deletion_auc, insertion_auc)."""
    cells = list(cells)
    order = sorted(set(cells), key=lambda c: ("_" in c, c))  # the figures' order
    last = randomization.groupby("method")["step"].transform("max") == randomization["step"]
    rand = randomization[last]
    curves = pd.DataFrame([
        {"method": m, "image": j, "map_index": int(positions[j]), "cell": cells[j],
         "deletion_auc": d[j], "insertion_auc": i[j]}
        for m, (d, i) in areas.items() if m != "random" for j in range(len(d))
    ])  # fmt: skip
    parts = [
        cell_validation(curves, CURVE_MEASURES, order, n_boot, seed) if len(curves) else None,
        cell_validation(rand, RANDOMIZATION_MEASURES, order, n_boot, seed) if len(rand) else None,
    ]
    parts = [p for p in parts if p is not None and len(p)]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return table, curves
