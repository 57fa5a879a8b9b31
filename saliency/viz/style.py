"""Matplotlib setup shared by every figure: off-screen backend, one style, atomic saving.

Publication figures (``saliency figures``) use :data:`PAPER_RC`: widths of a one-column
(3.5 in) and two-column (7 in) paper, text of 6-8 pt, the perceptual sequential map
:data:`HEAT` for heat, the diverging map :data:`DIVERGING` centred at zero for signed maps
and differences, and one order and one color per selection (:func:`selection_order`,
:func:`selection_colors`) in every figure.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from saliency.atomic import atomic_write  # noqa: E402

RC = {
    "figure.dpi": 100,
    "savefig.dpi": 120,  # stage previews, for the screen (publication figures: PAPER_RC, --dpi)
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,  # editable text in PDF
}


PREVIEW_PNG = {"compress_level": 1}  # zlib level of stage previews (publication: default 6)

WIDTHS = {"single": 3.5, "double": 7.0}  # inches
HEAT = "magma"  # perceptual, sequential, readable in grayscale and for color-blind readers
DIVERGING = "RdBu_r"  # ColorBrewer diverging, color-blind safe; always centred at zero
# Okabe and Ito's color-blind-safe palette (black last: kept for "all")
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
ALL_COLOR = "#000000"
PAPER_RC = {
    **RC,
    "savefig.dpi": 300,
    "savefig.bbox": "standard",  # exactly the page width: constrained layout fits inside it
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "figure.titlesize": 8,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.0,
    "font.family": "DejaVu Sans",
}


def selection_order(names: list[str]) -> list[str]:
    """One order everywhere: ``all``, then classes and subgroups (no underscore), then cells,
    each alphabetical."""
    names = list(dict.fromkeys(names))
    head = [n for n in names if n == "all"]
    plain = sorted(n for n in names if n != "all" and "_" not in n)
    cells = sorted(n for n in names if "_" in n)
    return head + plain + cells


def selection_colors(names: list[str]) -> dict[str, str]:
    """One color per selection, by its place in :func:`selection_order` (``all`` in black)."""
    order = [n for n in selection_order(names) if n != "all"]
    colors = {n: OKABE_ITO[k % len(OKABE_ITO)] for k, n in enumerate(order)}
    return {"all": ALL_COLOR, **colors} if "all" in names else colors


def new_figure(width: float, height: float) -> Figure:
    """A figure with the project style; never shown, only saved."""
    with plt.rc_context(RC):
        return plt.figure(figsize=(width, height))


def paper_figure(width: float, height: float) -> Figure:
    """A figure in the publication style (:data:`PAPER_RC`), laid out with constrained layout
    so nothing is cut off or overlaps."""
    with plt.rc_context(PAPER_RC):
        return plt.figure(figsize=(width, height), layout="constrained")


def inch_axes(fig: Figure, left: float, bottom: float, width: float, height: float):
    """Axes placed in inches from the figure's lower left corner (a fixed layout: the figure
    is saved as it is, without the extra drawing pass that a tight bounding box costs)."""
    w, h = fig.get_size_inches()
    return fig.add_axes((left / w, bottom / h, width / w, height / h))


def inch_margins(
    fig: Figure, left: float, bottom: float, right: float, top: float, gap: float = 0.0
) -> Figure:
    """A fixed layout for a figure of subplots: margins and the gap between columns in inches
    (room for tick labels, axis labels and titles), saved with ``tight=False``."""
    w, h = fig.get_size_inches()
    cols = max([ax.get_subplotspec().get_gridspec().ncols for ax in fig.axes] or [1])
    axis = (w - left - right - gap * (cols - 1)) / cols
    fig.subplots_adjust(left / w, bottom / h, 1 - right / w, 1 - top / h, wspace=gap / axis)
    return fig


def save_figure(
    fig: Figure,
    path: str | os.PathLike,
    dpi: int | None = None,
    tight: bool = True,
) -> Path:
    """Save ``fig`` atomically as PNG, then close it.

    ``tight``: crop to the drawn content (one extra drawing pass); figures laid out with
    :func:`inch_axes` pass False. Stage previews are for the screen, so their PNG is
    compressed at zlib level 1 (measured: about 20% larger, encoded about twice as fast)."""
    path = Path(path)
    png = {"format": "png", "dpi": dpi or RC["savefig.dpi"], "pil_kwargs": PREVIEW_PNG}
    with plt.rc_context({**RC, "savefig.bbox": "tight" if tight else "standard"}):
        atomic_write(path, lambda tmp: fig.savefig(tmp, **png))
    plt.close(fig)
    return path
