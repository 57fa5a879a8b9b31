"""Per-image attributes from an RGB image and its exclusive region label map.

Region codes are :data:`saliency.data.regions.REGION_CODES` (1 skin, 2 brows, 3 eyes,
4 nose, 5 mouth, 6 hair); the *face parts* are skin, brows, eyes, nose and mouth. The three
attributes, exactly:

``skin_brightness``
    The mean CIE L* (D65, 0 black to 100 white) over the skin pixels: each pixel's sRGB
    values ``c = v / 255`` are linearized (``c / 12.92`` when ``c <= 0.04045``, else
    ``((c + 0.055) / 1.055) ** 2.4``), its relative luminance is ``Y = 0.2126 R + 0.7152 G +
    0.0722 B`` (Rec. 709 primaries) and ``L* = 116 Y ** (1/3) - 16`` (``903.3 Y`` when
    ``Y <= (6/29) ** 3``). The mean of the pixels' L*, not the L* of their mean colour.
    NaN without skin pixels.

``hair_over_face``
    The share of the face region F (face oval and forehead) labelled hair: ``|F & hair| /
    |F|``. F is built from the face parts alone, so it does not depend on where the hair is:

    1. The eye centres ``e_l``, ``e_r``: the eye pixels split at their mean column, the
       centroid of each half (the brows' pixels when there are no eye pixels on both sides;
       without either, NaN). One merged component (glasses, which BiSeNet masks count as
       eyes) splits the same way.
    2. The face's frame: origin ``o = (e_l + e_r) / 2``, ``u`` the unit vector from ``e_l`` to
       ``e_r``, ``v`` ``u`` turned 90 degrees to point down the face; a pixel centre ``p`` has
       ``s = (p - o) . u`` and ``t = (p - o) . v``.
    3. The chin depth ``c``: the largest ``t`` of any face-part pixel (NaN when not below the
       eye line).
    4. The lower face: the face-part pixels with ``t >= 0``. Its width at the eye line:
       ``s_lo``, ``s_hi``, the smallest and largest ``s`` of the face-part pixels with
       ``0 <= t <= c / 4`` (of all lower-face pixels when none lies there).
    5. The forehead: the half ellipse above the eye line with centre
       ``((s_lo + s_hi) / 2, 0)``, semi-axes ``(s_hi - s_lo) / 2`` across and
       ``FOREHEAD * c = 0.75 c`` up. By the rule of thirds (hairline to brows, brows to the
       nose's base, base to chin: a third each; the eyes a tenth of the face below the brows)
       the hairline lies 0.75 eye-to-chin depths above the eye line; the generator's faces
       reach 0.75 too.
    6. F: the pixels whose centres lie in the convex hull of the lower face's pixel centres
       and the forehead's outline.

    It works on any label map with these codes (the generator's, BiSeNet's mapped to them,
    the landmark polygons'): in BiSeNet's, ears count as skin, so the lower face reaches
    them. Hair above the rule-of-thirds hairline or beside the face is not over the face;
    a fringe, bangs or a low hairline is.

``face_area``
    The visible face: face-part pixels over all pixels of the image.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from saliency.analysis.attributes import ATTRIBUTES
from saliency.data.imageio import ImageReadError, read_label_map, read_rgb
from saliency.data.regions import REGION_CODES

FACE_PARTS: tuple[str, ...] = ("skin", "brows", "eyes", "nose", "mouth")
FOREHEAD = 0.75  # forehead height above the eye line, per eye-to-chin depth
WIDTH_BAND = 0.25  # the face's width is read from the eye line down to this share of c
SUBPIXEL_BITS = 4


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* (D65) of sRGB values ``[..., 3]`` in 0-255 -> ``[...]`` in 0-100."""
    c = np.asarray(rgb, np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    y = lin @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(y > (6 / 29) ** 3, 116.0 * np.cbrt(y) - 16.0, (29 / 3) ** 3 * y)


def face_parts(labels: np.ndarray) -> np.ndarray:
    """``bool [H, W]``: the pixels of skin, brows, eyes, nose and mouth."""
    return np.isin(labels, [REGION_CODES[r] for r in FACE_PARTS])


def skin_brightness(image: np.ndarray, labels: np.ndarray) -> float:
    """Mean L* of the skin pixels of ``image`` (RGB ``uint8 [H, W, 3]``); NaN without skin."""
    skin = labels == REGION_CODES["skin"]
    return float(lightness(image[skin]).mean()) if skin.any() else float("nan")


def face_area(labels: np.ndarray) -> float:
    """Face-part pixels over all pixels."""
    return float(face_parts(labels).mean())


def _centres(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(e_l, e_r)`` as ``(x, y)``: the eyes' two halves (split at their mean column), or
    the brows' when the eyes do not give both; None when neither does."""
    for region in ("eyes", "brows"):
        ys, xs = np.nonzero(labels == REGION_CODES[region])
        if xs.size < 2:
            continue
        left = xs < xs.mean()
        if left.any() and (~left).any():
            pts = np.stack([xs, ys], 1).astype(np.float64)
            return pts[left].mean(0), pts[~left].mean(0)
    return None


def face_region(labels: np.ndarray) -> np.ndarray | None:
    """The face oval and forehead F (``bool [H, W]``, the module docstring's steps 1-6);
    None when the label map has no eyes or brows on both sides or no face below them."""
    centres = _centres(labels)
    if centres is None:
        return None
    e_l, e_r = centres
    u = e_r - e_l
    u = u / np.hypot(*u)
    v = np.array([-u[1], u[0]])
    o = (e_l + e_r) / 2
    ys, xs = np.nonzero(face_parts(labels))
    pts = np.stack([xs, ys], 1).astype(np.float64)
    s, t = (pts - o) @ u, (pts - o) @ v
    c = float(t.max())
    if c <= 0:
        return None
    band = (t >= 0) & (t <= WIDTH_BAND * c)
    if not band.any():  # nothing near the eye line: the lower face's own width
        band = t >= 0
    s_lo, s_hi = float(s[band].min()), float(s[band].max())
    theta = np.linspace(np.pi, 2 * np.pi, 33)  # sin <= 0: above the eye line
    cap_s = (s_lo + s_hi) / 2 + (s_hi - s_lo) / 2 * np.cos(theta)
    cap_t = FOREHEAD * c * np.sin(theta)
    cap = o + cap_s[:, None] * u + cap_t[:, None] * v
    hull = cv2.convexHull(np.concatenate([pts[t >= 0], cap]).astype(np.float32))
    region = np.zeros(labels.shape, np.uint8)
    scaled = np.round(hull.reshape(-1, 2) * (1 << SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillConvexPoly(region, scaled, 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return region.astype(bool)


def hair_over_face(labels: np.ndarray) -> float:
    """Share of the face region F labelled hair; NaN when F cannot be built."""
    region = face_region(labels)
    if region is None or not region.any():
        return float("nan")
    return float((labels[region] == REGION_CODES["hair"]).mean())


def measure(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The three attributes of one image and its label map (same height and width)."""
    return {
        "skin_brightness": skin_brightness(image, labels),
        "hair_over_face": hair_over_face(labels),
        "face_area": face_area(labels),
    }


def measure_file(image: str | os.PathLike, mask: str | os.PathLike | None) -> dict:
    """The attributes of one image file and its mask file, with ``reason`` (empty when
    measured; else why not, and the attributes NaN)."""
    nan = {a: float("nan") for a in ATTRIBUTES}
    if not mask or not Path(mask).is_file():
        return {**nan, "reason": f"no region mask ({mask or 'none given'})"}
    try:
        rgb, labels = read_rgb(image), read_label_map(mask)
    except (ImageReadError, OSError) as exc:
        return {**nan, "reason": str(exc)}
    if rgb.shape[:2] != labels.shape:
        h, w = labels.shape
        return {**nan, "reason": f"mask is {w}x{h}, the image {rgb.shape[1]}x{rgb.shape[0]}"}
    return {**measure(rgb, labels), "reason": ""}


def _chunk(pairs: list[tuple[str, str]]) -> list[dict]:
    return [measure_file(i, m) for i, m in pairs]


def measure_files(
    images: Sequence[str | os.PathLike],
    masks: Sequence[str | os.PathLike | None],
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """The attributes (and ``reason``) of every image, in order; ``workers`` > 1 measures in
    that many processes, ``progress(n)`` hears each finished chunk."""
    pairs = [(str(i), str(m) if m else "") for i, m in zip(images, masks, strict=True)]
    size = 64
    chunks = [pairs[k : k + size] for k in range(0, len(pairs), size)]
    rows: list[dict] = []
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(_progress(pool.map(_chunk, chunks), progress))
    else:
        results = list(_progress(map(_chunk, chunks), progress))
    for part in results:
        rows += part
    return pd.DataFrame(rows, columns=[*ATTRIBUTES, "reason"])


def _progress(parts, progress: Callable[[int], None] | None):
    for part in parts:
        if progress is not None:
            progress(len(part))
        yield part
