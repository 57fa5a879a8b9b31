"""Alignment to the canonical crop: a similarity transform from 5 points to a template.

The template is the synthetic generator's mean face (eye centres, nose tip, mouth corners,
as fractions of the crop side, made left-right symmetric), so aligned photos and synthetic
faces share one layout: eyes at 44% of the height, 22% of the side apart, with room for
the forehead and hair that the region analyses need.

Of the 5 points, the eye centres (the most reliable landmarks) fix the similarity: two
points determine rotation, scale and translation exactly, so every aligned face has its
eyes on the template's, the convention of average-face studies. A least-squares fit over
all 5 would move the eyes by the person's own nose and mouth proportions (17% of the
inter-ocular distance on ``skimage.data.astronaut()``). Nose and mouth then test the fit:
their misfit says when the landmarks are implausible.
"""

from __future__ import annotations

import cv2
import numpy as np

from saliency.faces.landmarks.base import five_points

TEMPLATE = np.array(  # [5, 2] (x, y) as fractions of the side: left eye, right eye, nose
    [[0.3907, 0.4424], [0.6093, 0.4424], [0.5, 0.6247], [0.4066, 0.726], [0.5934, 0.726]]
)  # tip, left and right mouth corner (image left first)
MAX_RESIDUAL = 0.6  # RMS 5-point misfit (inter-ocular distances) above which we skip: faces
# vary (the astronaut's is 0.31 against this synthetic template), landmark failures do not


def template(size: int) -> np.ndarray:
    """Template points ``[5, 2]`` in pixels of a ``size`` px crop (pixel centres at
    integer coordinates)."""
    return TEMPLATE * size - 0.5


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection)
    mapping points ``src [K, 2]`` onto ``dst [K, 2]``, as a ``[2, 3]`` matrix (Umeyama)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / a.var(0).sum())
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a ``[2, 3]`` affine matrix to points ``[K, 2]``."""
    pts = np.asarray(points, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def fit_residual(landmarks: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The matrix taking ``landmarks`` (68 or 5 points) to the template of a ``size`` px
    crop (eye centres exactly), and the RMS misfit of all 5 points there, in template
    inter-ocular distances."""
    src, dst = five_points(landmarks), template(size)
    matrix = similarity(src[:2], dst[:2])
    misfit = np.sqrt(((transform_points(src, matrix) - dst) ** 2).sum(1).mean())
    return matrix, float(misfit / np.linalg.norm(dst[1] - dst[0]))


def warp(image: np.ndarray, matrix: np.ndarray, size: int, labels: bool = False) -> np.ndarray:
    """The ``size`` px crop of ``image`` (RGB ``uint8 [H, W, 3]``, or a label map with
    ``labels=True``: nearest neighbour) under ``matrix``; outside the photo is black (0).

    warpAffine interpolates bilinearly, which aliases when it shrinks, so a shrinking warp
    first resizes the image by its scale with area averaging, then warps the rest."""
    if labels:
        return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_NEAREST)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 1.0:
        h, w = image.shape[:2]
        small = cv2.resize(
            image,
            (max(1, round(w * scale)), max(1, round(h * scale))),
            interpolation=cv2.INTER_AREA,
        )
        sy, sx = small.shape[0] / h, small.shape[1] / w  # x = (x_small + 0.5) / s - 0.5
        a = matrix[:, :2]
        matrix = np.hstack(
            [a / [sx, sy], (a @ [0.5 / sx - 0.5, 0.5 / sy - 0.5] + matrix[:, 2])[:, None]]
        )
        image = small
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
