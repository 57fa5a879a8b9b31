"""The figures each stage writes beside its files, assembled from :mod:`saliency.viz` panels.

One function per figure; each returns a matplotlib Figure for ``viz.style.save_figure``.
Publication grids (``saliency figures``) assemble the same panels differently.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from saliency.data.regions import CODE_NAMES, REGION_CODES
from saliency.viz.ablation import score_bins, scores_panel
from saliency.viz.average import difference_panel, face_panel, map_panel
from saliency.viz.regions import REGION_COLORS, region_tile
from saliency.viz.share import enrichment_panel, shown_selections
from saliency.viz.style import inch_axes, inch_margins, new_figure

# fixed layouts (inches) of the map previews: square panels, a colorbar right of a map
PANEL, MARGIN, GAP, BAR, BAR_PAD, TICKS = 2.2, 0.15, 0.3, 0.12, 0.08, 0.55
PANEL_TITLE, LINE = 0.3, 0.15  # room for a panel's title; one line of the figure's title


def _panels(bars: list[bool], title: str) -> tuple[Figure, list]:
    """A figure of square panels in a row, each followed by a colorbar where ``bars`` says,
    under ``title`` wrapped to the figure's width (about 0.062 in per character at 8 pt).
    Returns the figure and ``(ax, colorbar ax or None)`` per panel; a fixed layout, saved
    with ``save_figure(..., tight=False)``."""
    bar_room = BAR_PAD + BAR + TICKS
    width = 2 * MARGIN + len(bars) * PANEL + (len(bars) - 1) * GAP + sum(bars) * bar_room
    lines = [w for line in title.split("\n") for w in textwrap.wrap(line, int(width / 0.062))]
    height = MARGIN + PANEL + PANEL_TITLE + LINE * len(lines) + 0.1
    fig = new_figure(width, height)
    fig.suptitle("\n".join(lines), fontsize=8, y=1 - 0.06 / height, va="top")
    out, left = [], MARGIN
    for bar in bars:
        ax = inch_axes(fig, left, MARGIN, PANEL, PANEL)
        cax = inch_axes(fig, left + PANEL + BAR_PAD, MARGIN, BAR, PANEL) if bar else None
        out.append((ax, cax))
        left += PANEL + GAP + (bar_room if bar else 0)
    return fig, out


def map_figure(face: np.ndarray, values: np.ndarray, title: str, left: str, right: str) -> Figure:
    """An image (left) and a map over it with a colorbar (right); diverging if signed. A fixed
    layout: save with ``save_figure(..., tight=False)``."""
    fig, ((ax0, _), (ax1, bar)) = _panels([False, True], title)
    face_panel(ax0, face, left)
    map_panel(ax1, face, values, right)
    fig.colorbar(ax1.images[-1], cax=bar)
    return fig


def average_figure(face: np.ndarray, mean: np.ndarray, n: int, title: str, norm: str) -> Figure:
    """Average face | mean map over it with a colorbar; ``n`` printed (a fixed layout)."""
    return map_figure(face, mean, title, f"average face (n = {n})", f"mean map ({norm} per image)")


def contrast_figure(
    face: np.ndarray,
    mean: np.ndarray,
    diff: np.ndarray,
    significant: np.ndarray,
    title: str,
    n_a: int,
    n_b: int,
    norm: str,
) -> Figure:
    """The selection's mean map | its difference from the contrast's, with the family-wise
    significant pixels outlined; each with its colorbar (a fixed layout: ``tight=False``)."""
    title += "\noutline: p < 0.05, family-wise (max-t permutation)"
    fig, ((ax0, bar0), (ax1, bar1)) = _panels([True, True], title)
    map_panel(ax0, face, mean, f"mean map (n = {n_a}, {norm} per image)")
    difference_panel(ax1, face, diff, significant, f"difference (n = {n_a} vs {n_b})")
    fig.colorbar(ax0.images[-1], cax=bar0)
    fig.colorbar(ax1.images[-1], cax=bar1)
    return fig


def distributions_figure(per: pd.DataFrame, title: str) -> Figure:
    """The true class's score before and after, one panel per subgroup (or one for all);
    ``per`` holds one region's per-image rows. Laid out by hand: ``tight=False``."""
    groups = sorted(set(per["group"]) - {""}) or [""]
    fig = new_figure(2.6 * len(groups), 2.4)
    bins = score_bins(per)
    for k, g in enumerate(groups):
        rows = per if g == "" else per[per["group"] == g]
        ax = fig.add_subplot(1, len(groups), k + 1)
        scores_panel(ax, rows, bins, f"{g or 'all'} (n = {len(rows)})", legend=k == 0)
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(top=0.8, bottom=0.2, wspace=0.3)
    return fig


def enrichment_figure(
    summary: pd.DataFrame, title: str, selections: list[str] | None = None, max_bars: int = 6
) -> Figure:
    """Enrichment per region for up to ``max_bars`` selections of one split's rows, the
    legend below (fixed margins: save with ``tight=False``)."""
    selections = shown_selections(summary, selections, max_bars)
    regions = list(dict.fromkeys(summary["region"]))
    fig = new_figure(min(7.5, 1.2 + 0.9 * len(regions) + 0.1 * len(regions) * len(selections)), 2.8)
    enrichment_panel(fig.add_subplot(1, 1, 1), summary, selections, title)
    return inch_margins(fig, 0.85, 0.7, 0.1, 0.3)


def region_sheet(
    images: list[np.ndarray],
    labels: list[np.ndarray],
    landmarks: list[np.ndarray | None],
    titles: list[str],
    columns: int = 8,
) -> Figure:
    """A contact sheet: each face as drawn (top) and with region overlay and landmarks (below).

    Args:
        images: RGB ``uint8 [H, W, 3]`` each.
        labels: region label maps ``uint8 [H, W]`` (codes in :mod:`saliency.data.regions`).
        landmarks: ``[68, 2]`` pixel coordinates, or None.
        titles: one short caption per face.
    """
    n = len(images)
    columns = min(columns, n)
    rows = -(-n // columns)
    narrow = columns < 4  # the legend then takes two rows
    fig = new_figure(max(1.25 * columns, 2.6), 2.6 * rows + (0.6 if narrow else 0.4))
    for i in range(n):
        r, c = divmod(i, columns)
        top = fig.add_subplot(2 * rows, columns, 2 * r * columns + c + 1)
        bottom = fig.add_subplot(2 * rows, columns, (2 * r + 1) * columns + c + 1)
        region_tile(top, bottom, images[i], labels[i], landmarks[i], titles[i])
    handles = [
        Patch(color=np.array(REGION_COLORS[CODE_NAMES[k]]) / 255, label=CODE_NAMES[k])
        for k in sorted(REGION_CODES.values())
    ]
    ncol = 3 if narrow else len(handles)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False, fontsize=8)
    bottom = 0.06 if not narrow else 0.36 / (2.6 * rows + 0.6)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.96, bottom=bottom, wspace=0.04, hspace=0.12)
    return fig
