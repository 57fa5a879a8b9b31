"""Region x cell: each region's deletion effect on each cell's images, judged for the whole
family of regions and cells at once.

The effect of deleting region R on cell C is the mean drop of the true class's probability
(before minus after, 0-1) over C's images; ``all`` is every image. The intervals are
simultaneous over every (region, cell) pair of the table, ``all`` excluded (bootstrap max-t,
:func:`saliency.analysis.familywise.max_t`; images resampled once for every pair): a pair is
marked when its interval excludes zero for the whole family, so scanning a matrix of 6 x 4
effects for the ones that stand out is safe. The ``all`` column's intervals are simultaneous
over the regions alone, as in ``saliency ablate``'s ranking.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from saliency.analysis.familywise import describe, max_t


def region_cell_table(
    drops: pd.DataFrame,
    regions: Sequence[str],
    cells: Sequence[str],
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """``drops``: per image, ``cell`` and ``drop_<region>`` (NaN where the region had no
    area); ``cells``: the cells to report, in order. Returns one row per region and
    selection (``all``, then each cell): ``n``, ``effect``, ``low``, ``high``, ``p_fw``,
    ``marked`` (the interval excludes zero), ``family`` (the number of effects judged
    together) and ``adjustment``."""
    regions, cells = list(regions), [c for c in cells if (drops["cell"] == c).any()]
    x = drops[[f"drop_{r}" for r in regions]].to_numpy(float)
    where = drops["cell"].to_numpy()
    # one column per (cell, region): the image's drop where it is in the cell, else NaN,
    # so that each column's mean is the cell's effect and one resample serves every pair
    grid = np.concatenate([np.where((where == c)[:, None], x, np.nan) for c in cells], axis=1)
    by_cell = max_t(grid, n_boot=n_boot, seed=seed) if cells else None
    overall = max_t(x, n_boot=n_boot, seed=seed)
    rows = []
    for k, r in enumerate(regions):
        rows.append(_row(r, "all", int(np.isfinite(x[:, k]).sum()), overall, k,
                         describe(overall.size)))  # fmt: skip
    for j, c in enumerate(cells):
        for k, r in enumerate(regions):
            n = int(np.isfinite(x[where == c, k]).sum())
            rows.append(_row(r, c, n, by_cell, j * len(regions) + k,
                             describe(by_cell.size, "region x cell effects")))  # fmt: skip
    return pd.DataFrame(rows)


def _row(region: str, selection: str, n: int, fw, k: int, adjustment: str) -> dict:
    low, high = fw.low[k], fw.high[k]
    return {"region": region, "selection": selection, "n": n, "effect": fw.estimate[k],
            "low": low, "high": high, "p_fw": fw.p[k],
            "marked": bool(low > 0 or high < 0), "family": fw.size,
            "adjustment": adjustment}  # fmt: skip


def drops_by_cell(per: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Long per-image ablation rows (``path``, ``label``, ``group``, ``region``,
    ``region_area``, ``prob_before``, ``prob_after``) -> one row per image with its
    ``cell`` and ``drop_<region>`` (NaN where the region had no area)."""
    from saliency.data.cells import cell_column

    drop = (per["prob_before"] - per["prob_after"]).where(per["region_area"] > 0)
    wide = per.assign(drop=drop).pivot_table(index="path", columns="region", values="drop",
                                             aggfunc="first", dropna=False)  # fmt: skip
    wide.columns = [f"drop_{r}" for r in wide.columns]
    who = per.drop_duplicates("path").set_index("path")[["label", "group"]]
    who = who.assign(cell=cell_column(who.fillna({"group": ""}), classes))
    return wide.join(who["cell"]).reset_index()


def per_cell(
    per: pd.DataFrame, classes: list[str], regions: Sequence[str], n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame | None:
    """:func:`region_cell_table` of long per-image ablation rows (:func:`drops_by_cell`) for
    the ``regions`` present, every cell in order; ``None`` with fewer than three regions."""
    from saliency.data.cells import cell_column

    present = [r for r in regions if r in set(per["region"])]
    if len(present) < 3:
        return None
    cells = sorted(
        set(cell_column(per.fillna({"group": ""}), classes)), key=lambda c: ("_" in c, c)
    )
    return region_cell_table(drops_by_cell(per, classes), present, cells, n_boot, seed)
