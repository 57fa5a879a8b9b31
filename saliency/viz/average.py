"""Map panels: an image, a map over it, a difference with its significant pixels outlined.

Each panel draws into the ``ax`` it is given and returns it; the figure around it (size,
colorbar, suptitle) belongs to whoever assembles the panels.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes


def _bare(ax: Axes, title: str, fontsize: float | None = 8) -> Axes:
    ax.set_title(title, fontsize=fontsize)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return ax


def count_label(ax: Axes, text: str) -> Axes:
    """A small label in the panel's lower left corner, readable over any map."""
    ax.text(0.03, 0.04, text, transform=ax.transAxes, color="white", fontsize=6, va="bottom",
            bbox={"facecolor": "black", "alpha": 0.45, "pad": 1.2, "linewidth": 0})  # fmt: skip
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


def heat_panel(
    ax: Axes,
    face: np.ndarray,
    values: np.ndarray,
    vmax: float,
    signed: bool,
    title: str,
    cmap: str,
    alpha: float = 0.6,
) -> Axes:
    """A map over the image on a scale given by the caller (panels of one method share it):
    ``[-vmax, vmax]`` when ``signed``, else ``[0, vmax]``. The map is ``ax.images[-1]``."""
    ax.imshow(np.clip(face, 0, 1), interpolation="bilinear")
    lo = -vmax if signed else 0.0
    ax.imshow(values, cmap=cmap, vmin=lo, vmax=vmax, alpha=alpha, interpolation="bilinear")
    return _bare(ax, title, None)


def greyed_panel(ax: Axes, face: np.ndarray | None, title: str, reason: str) -> Axes:
    """A panel left out (too few images, or none): the face faded, and why."""
    if face is not None:
        gray = np.clip(face, 0, 1).mean(axis=-1)
        ax.imshow(0.75 + 0.25 * gray, cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
    else:  # a blank square, so the panel keeps the shape of its neighbours
        ax.imshow(np.full((2, 2), 0.9), cmap="gray", vmin=0, vmax=1)
    ax.text(0.5, 0.5, reason, transform=ax.transAxes, ha="center", va="center", color="0.25")
    return _bare(ax, title, None)
