"""Region overlays: color each region of a label map over its image, with landmarks."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from saliency.data.regions import REGION_CODES

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


def region_tile(
    top: Axes,
    bottom: Axes,
    image: np.ndarray,
    labels: np.ndarray,
    landmarks: np.ndarray | None,
    title: str,
) -> tuple[Axes, Axes]:
    """One face as drawn (``top``) and with its region overlay and landmarks (``bottom``)."""
    top.imshow(image, interpolation="nearest")
    top.set_title(title, fontsize=7, pad=2)
    bottom.imshow(region_overlay(image, labels), interpolation="nearest")
    if landmarks is not None:
        pts = np.asarray(landmarks)
        bottom.scatter(pts[:, 0], pts[:, 1], s=1.5, c="white", edgecolors="none")
    for ax in (top, bottom):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    return top, bottom
