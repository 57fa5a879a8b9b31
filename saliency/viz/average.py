"""Average-face figures: the mean map over the mean face, and contrasts with significance."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from saliency.viz.style import new_figure


def _overlay(ax, face, values, signed, title, alpha=0.55, vmax=None):
    ax.imshow(np.clip(face, 0, 1), interpolation="bilinear")
    if signed:
        vmax = vmax or max(float(np.abs(values).max()), 1e-12)
        im = ax.imshow(
            values, cmap="RdBu_r", vmin=-vmax, vmax=vmax, alpha=alpha, interpolation="bilinear"
        )
    else:
        im = ax.imshow(
            values,
            cmap="inferno",
            alpha=alpha,
            interpolation="bilinear",
            vmin=0,
            vmax=vmax or max(float(values.max()), 1e-12),
        )
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def map_figure(face: np.ndarray, values: np.ndarray, title: str, left: str, right: str) -> Figure:
    """An image (left) and a map over it with a colorbar (right); diverging if signed."""
    fig = new_figure(5.2, 2.9)
    ax0, ax1 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax0.imshow(np.clip(face, 0, 1), interpolation="bilinear")
    ax0.set_title(left, fontsize=8)
    ax0.set_xticks([])
    ax0.set_yticks([])
    im = _overlay(ax1, face, values, bool((values < 0).any()), right)
    fig.colorbar(im, ax=ax1, fraction=0.046, pad=0.03)
    fig.suptitle(title, fontsize=9)
    return fig


def average_figure(face: np.ndarray, mean: np.ndarray, n: int, title: str, norm: str) -> Figure:
    """Average face | mean map over it with a colorbar; ``n`` printed."""
    return map_figure(face, mean, title, f"average face (n = {n})", f"mean map ({norm} per image)")


def contrast_figure(
    face: np.ndarray, diff: np.ndarray, significant: np.ndarray, title: str, n_a: int, n_b: int
) -> Figure:
    """Difference of mean maps, with family-wise significant pixels outlined."""
    fig = new_figure(3.2, 3.1)
    ax = fig.add_subplot()
    im = _overlay(ax, face, diff, True, f"difference (n = {n_a} vs {n_b})")
    if significant.any():
        ax.contour(significant.astype(float), levels=[0.5], colors="black", linewidths=0.8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    fig.suptitle(title + "\noutline: p < 0.05, family-wise (max-t permutation)", fontsize=8)
    return fig
