"""Matplotlib setup shared by every figure: off-screen backend, one style, atomic saving."""

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
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,  # editable text in PDF
}


def new_figure(width: float, height: float) -> Figure:
    """A figure with the project style; never shown, only saved."""
    with plt.rc_context(RC):
        return plt.figure(figsize=(width, height))


def save_figure(
    fig: Figure, path: str | os.PathLike, pdf: bool = False, dpi: int | None = None
) -> Path:
    """Save ``fig`` atomically as PNG (and PDF beside it when ``pdf``), then close it."""
    path = Path(path)
    with plt.rc_context(RC):
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi or RC["savefig.dpi"]))
        if pdf:
            atomic_write(path.with_suffix(".pdf"), lambda tmp: fig.savefig(tmp))
    plt.close(fig)
    return path
