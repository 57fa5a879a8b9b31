"""What every landmark backend shares: :class:`Face`, the :class:`Backend` protocol, points.

A backend maps an RGB image ``uint8 [H, W, 3]`` to the faces it finds, each a
:class:`Face` with a box and landmarks in image pixels: 68 iBUG 300-W points, or the 5
points alignment needs (eye centres, nose tip, mouth corners; CelebA's order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

FIVE = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")  # CelebA names, image left first


@dataclass
class Face:
    """One detected face: ``box`` (x0, y0, x1, y1) px, ``landmarks [K, 2]`` (x, y) px with
    K = 68 or 5, and the detector's score (None when not detected, e.g. given columns)."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float | None = None

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


class Backend(Protocol):
    name: str

    def faces(self, image: np.ndarray, row: pd.Series | None = None) -> list[Face]:
        """Every face found in ``image``; ``row`` is the manifest row (for ``columns``)."""
        ...


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """The 5 alignment points ``[5, 2]`` from 68 iBUG points (eye centres are the means of
    36-41 and 42-47, nose tip 30, mouth corners 48 and 54), or 5 points as they are."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape == (5, 2):
        return pts
    if pts.shape != (68, 2):
        raise ValueError(f"expected 68 or 5 landmarks, got {pts.shape}")
    return np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])


def box_of(points: np.ndarray) -> tuple[float, float, float, float]:
    """The bounding box of a point set ``[K, 2]``."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])
