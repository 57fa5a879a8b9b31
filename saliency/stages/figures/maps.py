"""Publication figures of maps: the average-face grid and the difference maps.

Read from ``RUN/averages/`` only (what ``saliency average`` wrote). Each builder returns a
:class:`FigureSpec`, or a one-line reason naming the command that makes its inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from saliency.rundir import averages_dir
from saliency.stages.figures.spec import FigureSpec
from saliency.viz.average import count_label, greyed_panel, heat_panel
from saliency.viz.style import DIVERGING, HEAT, paper_figure


def _load(path: Path) -> dict | None:
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _grid_size(
    rows: int, cols: int, width: float, extra: float = 0.9, aspect: float = 1.0
) -> tuple[float, float]:
    """Figure (width, height) in inches for ``rows x cols`` panels of ``aspect`` (height /
    width of the maps: 218 / 178 for CelebA's native crop) plus ``extra`` for titles."""
    side = width / max(cols, 1)
    return width, side * aspect * rows + extra


def _aspect(loaded) -> float:
    """Height / width of the first map among ``loaded`` (dicts from :func:`_load`)."""
    for d in loaded:
        if d is not None:
            h, w = d["mean_face"].shape[:2]
            return h / w
    return 1.0


def _label_row(ax, text: str) -> None:
    ax.set_ylabel(text, rotation=0, ha="right", va="center", labelpad=4)


def average_grid(
    run: Path, methods: list[str], cells: list[str], width: float, min_n: int
) -> FigureSpec | str:
    """Rows: all and each cell; columns: correct and incorrect for each method. One scale
    per method for all its panels (diverging and centred at zero if any of its maps is
    signed), with a colorbar; n in every panel; panels under ``min_n`` images greyed."""
    rows, outcomes = ["all", *cells], ("correct", "incorrect")
    data = {
        (m, o, r): _load(averages_dir(run) / f"{m}_{o}_{r}.npz")
        for m in methods for o in outcomes for r in rows
    }  # fmt: skip
    if all(v is None for v in data.values()):
        return "no averages per outcome: run `saliency average --run RUN` (every outcome)"
    fig = paper_figure(*_grid_size(len(rows), 2 * len(methods), width, 0.9, _aspect(data.values())))
    axes = fig.subplots(len(rows), 2 * len(methods), squeeze=False)
    total, units = 0, {}
    for j, m in enumerate(methods):
        shown = [d for (mm, _, _), d in data.items() if mm == m and d is not None]
        shown = [d for d in shown if int(d["count"]) >= min_n] or shown
        signed = any(float(d["mean"].min()) < 0 for d in shown)
        vmax = max([float(np.abs(d["mean"]).max()) for d in shown] + [1e-12])
        norm = str(shown[0]["normalization"]) if shown else "max"
        for k, o in enumerate(outcomes):
            col = 2 * j + k
            for i, r in enumerate(rows):
                ax, d = axes[i, col], data[(m, o, r)]
                title = f"{m}, {o}" if i == 0 else ""
                if d is None:
                    greyed_panel(ax, None, title, "no images")
                elif int(d["count"]) < min_n:
                    greyed_panel(ax, d["mean_face"], title, f"n = {int(d['count'])} < {min_n}")
                else:
                    heat_panel(ax, d["mean_face"], d["mean"], vmax, signed, title,
                               DIVERGING if signed else HEAT)  # fmt: skip
                    count_label(ax, f"n = {int(d['count'])}")
                    units[m] = ax.images[-1]
                if col == 0:
                    _label_row(ax, r)
                if r == "all" and d is not None and k == 0:
                    total = max(total, int(d["count"]))
        if m in units:
            cb = fig.colorbar(units[m], ax=axes[:, 2 * j : 2 * j + 2], location="bottom",
                              shrink=0.9, aspect=25)  # fmt: skip
            cb.set_label(f"{m} ({norm}-normalized)")
    fig.suptitle("Average face and map per cell and prediction outcome "
                 "(maps normalized per image, then averaged)")  # fmt: skip
    caption = (f"Average face and average {', '.join(methods)} map for all test images and each "
               f"cell, split by correct and incorrect prediction; one color scale per method; "
               f"panels under {min_n} images greyed.")  # fmt: skip
    n_all = sum(int(data[(methods[0], o, "all")]["count"]) for o in outcomes
                if data[(methods[0], o, "all")] is not None)  # fmt: skip
    return FigureSpec("average_grid", fig, caption, n_all or total)


def _difference_row(fig, axes, i, method, panels, min_n) -> None:
    """One method's difference panels on one diverging scale centred at zero."""
    ok = [p for p in panels if p[1] is not None and p[3] >= min_n and p[4] >= min_n]
    vmax = max([float(np.abs(p[1]).max()) for p in ok] + [1e-12])
    last = None
    for j, (title, diff, sig, n_a, n_b, face) in enumerate(panels):
        ax = axes[i, j]
        head = title if i == 0 else ""
        if diff is None:
            greyed_panel(ax, face, head, "no test")
        elif n_a < min_n or n_b < min_n:
            greyed_panel(ax, face, head, f"n = {n_a} vs {n_b}")
        else:
            heat_panel(ax, face, diff, vmax, True, head, DIVERGING)
            if sig is not None and sig.any():
                ax.contour(sig.astype(float), levels=[0.5], colors="black", linewidths=0.5)
            count_label(ax, f"n = {n_a} vs {n_b}")
            last = ax.images[-1]
        if j == 0:
            _label_row(ax, method)
    if last is not None:
        cb = fig.colorbar(last, ax=axes[i, :], location="right", shrink=0.9, aspect=12)
        cb.set_label("difference of mean maps")


def incorrect_minus_correct(
    run: Path, methods: list[str], cells: list[str], width: float, min_n: int
) -> FigureSpec | str:
    """Per method (rows) and for all and each cell (columns): mean map of incorrect minus
    correct predictions, outlined where the max-t permutation test finds p < 0.05 (FWE)."""
    cols = ["all", *cells]
    found = {(m, c): _load(averages_dir(run) / f"{m}_incorrect_{c}_vs_correct.npz")
             for m in methods for c in cols}  # fmt: skip
    if all(v is None for v in found.values()):
        return ("no incorrect-vs-correct contrasts: run `saliency average --run RUN "
                "--contrast-incorrect`")  # fmt: skip
    fig = paper_figure(*_grid_size(len(methods), len(cols), width, 0.6, _aspect(found.values())))
    axes = fig.subplots(len(methods), len(cols), squeeze=False)
    n = 0
    for i, m in enumerate(methods):
        panels = []
        for c in cols:
            d = found[(m, c)]
            if d is None:
                panels.append((c, None, None, 0, 0, None))
                continue
            panels.append((c, d["difference"], d["p_fwe"] < 0.05, int(d["count"]),
                           int(d["contrast_count"]), d["mean_face"]))  # fmt: skip
            if c == "all":
                n = max(n, int(d["count"]) + int(d["contrast_count"]))
        _difference_row(fig, axes, i, m, panels, min_n)
    fig.suptitle("Incorrect minus correct predictions (outline: p < 0.05, family-wise)")
    caption = ("Mean map of incorrect minus correct predictions per method, for all test "
               "images and each cell; diverging scale centred at zero, one per method; "
               "outlines mark pixels significant under a max-t permutation test.")  # fmt: skip
    return FigureSpec("difference_incorrect_minus_correct", fig, caption, n)


def cell_minus_all(
    run: Path, methods: list[str], cells: list[str], width: float, min_n: int
) -> FigureSpec | str:
    """Per method and cell: the cell's mean map minus everyone's (split all). The outline
    comes from the cell-vs-rest permutation test (cell minus all is (1 - w) times cell minus
    rest, with w the cell's share of the images: the same sign and the same zero set)."""
    if not cells:
        return "no cells (no subgroups in the data)"
    base = {m: _load(averages_dir(run) / f"{m}_all_all.npz") for m in methods}
    if all(v is None for v in base.values()):
        return "no averages of split all: run `saliency average`"
    fig = paper_figure(*_grid_size(len(methods), len(cells), width, 0.6, _aspect(base.values())))
    axes = fig.subplots(len(methods), len(cells), squeeze=False)
    for i, m in enumerate(methods):
        panels = []
        for c in cells:
            test = _load(averages_dir(run) / f"{m}_all_{c}_vs_rest.npz")
            d = _load(averages_dir(run) / f"{m}_all_{c}.npz") or test  # the test has the mean
            if (
                d is None
                or base[m] is None
                or str(d["normalization"]) != str(base[m]["normalization"])
            ):
                panels.append((c, None, None, 0, 0, None))
                continue
            sig = test["p_fwe"] < 0.05 if test is not None else None
            n_rest = int(base[m]["count"]) - int(d["count"])
            panels.append((c, d["mean"] - base[m]["mean"], sig, int(d["count"]), n_rest,
                           d["mean_face"]))  # fmt: skip
        _difference_row(fig, axes, i, m, panels, min_n)
    fig.suptitle("Each cell minus all images (outline: cell vs rest, p < 0.05, family-wise)")
    n = max((int(b["count"]) for b in base.values() if b is not None), default=0)
    caption = ("Mean map of each cell minus that of all test images, per method; diverging "
               "scale centred at zero; outlines from the cell-vs-rest max-t permutation test "
               "where it was run (`saliency average --group CELL --contrast rest`).")  # fmt: skip
    return FigureSpec("difference_cell_minus_all", fig, caption, n)
