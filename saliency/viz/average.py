"""Map panels: an image, a map over it, a difference with its significant pixels outlined.

Each panel draws into the ``ax`` it is given and returns it; the figure around it (size,
colorbar, suptitle) belongs to whoever assembles the panels.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes


def _bare(ax: Axes, title: str) -> Axes:
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def face_panel(ax: Axes, face: np.ndarray, title: str) -> Axes:
    """An RGB image ``[H, W, 3]`` in [0, 1]."""
    ax.imshow(np.clip(face, 0, 1), interpolation="bilinear")
    return _bare(ax, title)


def map_panel(
    ax: Axes,
    face: np.ndarray,
    values: np.ndarray,
    title: str,
    signed: bool | None = None,
    vmax: float | None = None,
    alpha: float = 0.55,
) -> Axes:
    """A map ``[H, W]`` over the image: diverging and centred at zero when ``signed`` (default:
    when any value is negative), else from zero; the map is ``ax.images[-1]`` (colorbars)."""
    signed = bool((values < 0).any()) if signed is None else signed
    ax.imshow(np.clip(face, 0, 1), interpolation="bilinear")
    if signed:
        vmax = vmax or max(float(np.abs(values).max()), 1e-12)
        ax.imshow(
            values, cmap="RdBu_r", vmin=-vmax, vmax=vmax, alpha=alpha, interpolation="bilinear"
        )
    else:
        ax.imshow(
            values,
            cmap="inferno",
            alpha=alpha,
            interpolation="bilinear",
            vmin=0,
            vmax=vmax or max(float(values.max()), 1e-12),
        )
    return _bare(ax, title)


def difference_panel(
    ax: Axes, face: np.ndarray, diff: np.ndarray, significant: np.ndarray, title: str
) -> Axes:
    """A difference of mean maps (diverging, centred at zero), with the pixels of the boolean
    ``significant [H, W]`` outlined."""
    map_panel(ax, face, diff, title, signed=True)
    if significant.any():
        ax.contour(significant.astype(float), levels=[0.5], colors="black", linewidths=0.8)
    return ax
