"""Region overlays: color each region of a label map over its image, with landmarks."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from saliency.data.regions import CODE_NAMES, REGION_CODES
from saliency.viz.style import new_figure

REGION_COLORS: dict[str, tuple[int, int, int]] = {
    "skin": (0, 200, 210),
    "brows": (230, 30, 30),
    "eyes": (30, 90, 255),
    "nose": (20, 200, 60),
    "mouth": (240, 30, 200),
    "hair": (255, 230, 0),
}


def region_overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Blend region colors over an RGB ``uint8 [H, W, 3]`` image; returns the same shape."""
    out = image.astype(np.float32).copy()
    for name, code in REGION_CODES.items():
        sel = labels == code
        out[sel] = (1 - alpha) * out[sel] + alpha * np.array(REGION_COLORS[name], np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


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
        top.imshow(images[i], interpolation="nearest")
        top.set_title(titles[i], fontsize=7, pad=2)
        bottom = fig.add_subplot(2 * rows, columns, (2 * r + 1) * columns + c + 1)
        bottom.imshow(region_overlay(images[i], labels[i]), interpolation="nearest")
        if landmarks[i] is not None:
            pts = np.asarray(landmarks[i])
            bottom.scatter(pts[:, 0], pts[:, 1], s=1.5, c="white", edgecolors="none")
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
    handles = [
        Patch(color=np.array(REGION_COLORS[CODE_NAMES[k]]) / 255, label=CODE_NAMES[k])
        for k in sorted(REGION_CODES.values())
    ]
    ncol = 3 if narrow else len(handles)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False, fontsize=8)
    bottom = 0.06 if not narrow else 0.36 / (2.6 * rows + 0.6)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.96, bottom=bottom, wspace=0.04, hspace=0.12)
    return fig
