"""The six facial regions from 68 iBUG 300-W landmarks, without a face parser.

Every width comes from the landmarks themselves, scaled by the inter-ocular distance ``iod``
(between the two eye centres, the means of 36-41 and 42-47), in the face's own frame: ``r``
points from the image-left eye to the image-right eye, ``d`` is ``r`` turned to point down
the face. Shapes:

- eyes: the closed smooth curve (Catmull-Rom) through the eye outline 36-41 and 42-47;
- mouth: the closed smooth curve through the outer lip points 48-59;
- brows: a band of thickness ``BROW_THICKNESS * iod`` centred on the smooth curve through
  17-21 and 22-26 (the adult eyebrow is about 9 mm tall at an inter-pupillary distance of
  about 63 mm);
- nose: from just above the nasion 27 down the bridge 27-30 (width ``NOSE_BRIDGE * iod``),
  widening to the alae beside 31 and 35 (``NOSE_ALA`` of the base width 31-35 beyond each),
  closing a little below the base 31-35;
- face oval: the smooth jaw curve 0-16 closed over the forehead by a half ellipse through 0
  and 16 whose top lies ``FOREHEAD * (chin - brows)`` above the brows: by the rule of thirds
  the hairline is as far above the brows as the brows are above the base of the nose, half
  the brow-to-chin height;
- hair: estimated by GrabCut (see :mod:`saliency.faces.hair`) outside the oval and on the
  forehead above the brows (fringes, low hairlines); never in the face below the brows;
- skin: the face oval minus every other region.

Precedence, where shapes overlap (first wins): eyes > mouth > brows > nose > hair > skin.
Outlines traced by landmarks (eyes, lips) are the most certain; brows (assumed thickness)
and nose (assumed outline) next; hair, a colour estimate, beats only skin, which is the
remainder of the face oval by definition.
"""

from __future__ import annotations

import cv2
import numpy as np

from saliency.data.regions import REGION_CODES
from saliency.faces.hair import HeadFrame, estimate_hair

PRECEDENCE: tuple[str, ...] = ("eyes", "mouth", "brows", "nose", "hair", "skin")
FIVE_POINT_REASON = "5 landmarks: region masks need 68 points or a face parser"

BROW_THICKNESS = 0.14  # brow height / iod
NOSE_BRIDGE = 0.22  # width of the nasal dorsum / iod (about 14 mm at an iod of 63 mm)
NOSE_ALA = 0.25  # how far the alae reach beyond 31 and 35, per base width |35 - 31|
NOSE_BASE_MARGIN = 0.05  # nose outline below the base 31-35, per iod
FOREHEAD = 0.5  # hairline above the brows, per brow-to-chin height
SUBPIXEL_BITS = 4


def catmull_rom(points: np.ndarray, closed: bool, samples: int = 8) -> np.ndarray:
    """A smooth curve ``[M, 2]`` through ``points [K, 2]`` (uniform Catmull-Rom spline).

    ``samples`` points per segment; an open curve starts and ends at the first and last point.
    """
    p = np.asarray(points, np.float64)
    if closed:
        ext = np.concatenate([p[-1:], p, p[:2]])
    else:
        ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    n_seg = len(p) if closed else len(p) - 1
    t = np.arange(samples) / samples
    t2, t3 = t * t, t * t * t
    w = 0.5 * np.stack([-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t, t3 - t2])
    idx = np.arange(n_seg)[:, None] + np.arange(4)[None, :]  # [n_seg, 4] control points
    curve = np.einsum("kt,skc->stc", w, ext[idx]).reshape(-1, 2)
    return curve if closed else np.concatenate([curve, p[-1:]])


def fill_polygon(poly: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels ``bool [H, W]`` at least half covered by ``poly [K, 2]`` (x, y pixel centres)."""
    cover = np.zeros(shape, np.uint8)
    pts = np.round(np.asarray(poly) * (1 << SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(cover, [pts], 255, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
    return cover >= 128


def check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks as float64 ``[68, 2]``; a ValueError names why others cannot be used."""
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim == 2 and lm.shape[0] == 5:
        raise ValueError(FIVE_POINT_REASON)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks [68, 2] (x, y), got shape {lm.shape}")
    if not np.isfinite(lm).all():
        raise ValueError("landmarks contain NaN or infinite values")
    return lm


def _frame(lm: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Inter-ocular distance (px) and the unit vectors ``r`` (left to right), ``d`` (down)."""
    vec = lm[42:48].mean(0) - lm[36:42].mean(0)
    iod = float(np.hypot(*vec))
    if iod < 1e-6:
        raise ValueError("degenerate landmarks: both eye centres coincide")
    r = vec / iod
    return iod, r, np.array([-r[1], r[0]])


def brow_band(line: np.ndarray, half: float) -> np.ndarray:
    """Outline ``[2M, 2]`` of a band of half-thickness ``half`` px around a brow's points."""
    c = catmull_rom(line, closed=False)
    tangent = np.gradient(c, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    return np.concatenate([c + half * normal, (c - half * normal)[::-1]])


def nose_outline(lm: np.ndarray, iod: float, r: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Nose outline ``[K, 2]``: bridge 27-30 widening to the alae at the base 31-35."""
    base = lm[35] - lm[31]
    ala = NOSE_ALA * float(np.hypot(*base))
    hb = NOSE_BRIDGE * iod / 2
    below = NOSE_BASE_MARGIN * iod
    tip_level = 0.5 * (lm[30] + lm[33])  # the alae are widest between the tip and the base
    right = [
        lm[27] + hb * r,
        lm[29] + 1.2 * hb * r,
        tip_level + ((lm[35] - tip_level) @ r + ala) * r,
        lm[35] + 0.5 * ala * r + below * d,
        lm[34] + below * d,
    ]
    left = [
        lm[32] + below * d,
        lm[31] - 0.5 * ala * r + below * d,
        tip_level + ((lm[31] - tip_level) @ r - ala) * r,
        lm[29] - 1.2 * hb * r,
        lm[27] - hb * r,
    ]
    top = lm[27] - 0.5 * hb * d
    return np.concatenate([[top], right, [lm[33] + below * d], left])


def face_oval(lm: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, HeadFrame]:
    """Face outline ``[K, 2]`` (jaw 0-16 closed over the forehead) and the head's frame."""
    jaw = catmull_rom(lm[0:17], closed=False)
    centre = 0.5 * (lm[0] + lm[16])  # the ear line
    half_width = 0.5 * (lm[16] - lm[0])
    brows = lm[17:27].mean(0)
    chin = float((lm[8] - brows) @ d)
    up = float((centre - brows) @ d) + FOREHEAD * chin  # ear line to hairline
    theta = np.linspace(0.0, np.pi, 41)[1:-1]
    top = centre + np.cos(theta)[:, None] * half_width - np.sin(theta)[:, None] * up * d
    frame = HeadFrame(
        centre=centre,
        r=half_width / max(float(np.hypot(*half_width)), 1e-9),
        d=d,
        half_width=float(np.hypot(*half_width)),
        up=up,
        down=float((lm[8] - centre) @ d),
        brow_top=float(np.min((lm[17:27] - centre) @ d)),
    )
    return np.concatenate([jaw, top]), frame


def landmark_shapes(landmarks: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """The overlapping (not yet exclusive) masks ``bool [H, W]`` of eyes, brows, nose, mouth
    and the face oval (key ``"oval"``), for an image of ``shape`` (H, W)."""
    lm = check_landmarks(landmarks)
    iod, r, d = _frame(lm)
    half = BROW_THICKNESS * iod / 2
    oval, _ = face_oval(lm, d)
    return {
        "eyes": fill_polygon(catmull_rom(lm[36:42], True), shape)
        | fill_polygon(catmull_rom(lm[42:48], True), shape),
        "brows": fill_polygon(brow_band(lm[17:22], half), shape)
        | fill_polygon(brow_band(lm[22:27], half), shape),
        "nose": fill_polygon(nose_outline(lm, iod, r, d), shape),
        "mouth": fill_polygon(catmull_rom(lm[48:60], True), shape),
        "oval": fill_polygon(oval, shape),
    }


def landmark_regions(
    landmarks: np.ndarray,
    image: np.ndarray | None = None,
    hair: bool = True,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Exclusive region label map ``uint8 [H, W]`` from 68 landmarks (codes in regions.py).

    Args:
        landmarks: ``[68, 2]`` (x, y) in pixels of the image, iBUG 300-W order. Five points
            raise ``ValueError(FIVE_POINT_REASON)``.
        image: RGB ``uint8 [H, W, 3]``; needed for the hair estimate, else only its size is
            used.
        hair: estimate hair (GrabCut on ``image``); without it code 6 is never used.
        size: ``(H, W)`` when no image is given.

    Returns:
        ``uint8 [H, W]``: 0 background, 1 skin, 2 brows, 3 eyes, 4 nose, 5 mouth, 6 hair;
        overlaps resolved by ``PRECEDENCE``.
    """
    lm = check_landmarks(landmarks)
    if image is not None:
        shape = tuple(image.shape[:2])
    elif size is not None:
        shape = (int(size[0]), int(size[1]))
    else:
        raise ValueError("landmark_regions needs an image or a size (H, W)")
    if hair and image is None:
        raise ValueError("the hair estimate needs the RGB image")
    masks = landmark_shapes(lm, shape)
    if hair:
        _, frame = face_oval(lm, _frame(lm)[2])
        features = masks["eyes"] | masks["brows"] | masks["nose"] | masks["mouth"]
        masks["hair"] = estimate_hair(image, masks["oval"], features, frame)
    masks["skin"] = masks.pop("oval")
    labels = np.zeros(shape, np.uint8)
    for name in reversed(PRECEDENCE):  # later writes win
        if name in masks:
            labels[masks[name]] = REGION_CODES[name]
    return labels
