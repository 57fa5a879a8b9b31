"""Hair without a face parser: GrabCut on the RGB image, seeded from the face's geometry.

Positions are measured in the head's frame (:class:`HeadFrame`): ``u`` across the face in
units of half the jaw width (landmark 0 to 16), ``v`` down the face from the ear line (0-16)
in px, and ``rho = hypot(u, v / up)`` above the ear line (``v / down`` below it), so that the
face oval of :mod:`saliency.faces.polygons` is roughly ``rho <= 1``. The steps:

1. Colour seeds. Skin: the face below the top of the brows, eyes, brows, nose and mouth left
   out. Background: beside the head (``|u| > FAR_SIDE``) or far from it (``rho > FAR``),
   above the cheeks. Hair candidates: the crown band ``CROWN[0] < rho <= CROWN[1]`` above the
   ear line, which straddles the hairline and holds hair on nearly every head with hair.
2. Hair seeds: the candidates whose colour neither the skin-and-background colour mixture
   explains nor a smooth (quadratic) colour field fitted to the background seeds, each by
   the chi-square 99% point of a squared Mahalanobis distance. When fewer than
   ``MIN_SEED_FRACTION`` of the band remain, the head shows no hair we can tell apart
   (bald, or hair coloured like skin or background) and the estimate is empty.
3. GrabCut's two colour models are learned from these seeds only (hair vs skin plus
   background), frozen, and one graph cut labels the crop: the face below the top of the
   brows and the far region are definitely not hair, everything else is for the cut to
   decide. Eyes, brows, nose and mouth are painted with the median skin colour first: they
   are known not to be hair, and dark brows would look like dark hair.
4. Clean-up: pixels the background field explains are dropped, a 3 x 3 opening removes
   specks, and only pieces touching a hair seed are kept.

GrabCut runs on a crop around the head, resized so that the half jaw width is at most
``WORK_HALF_WIDTH`` px: fast, and the same behaviour at any image resolution. Limitations:
hair whose colour matches the skin's is often missed; hair cut off by a tight crop is fine,
a tight crop with no background left makes the background seeds few or absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CROWN = (0.7, 1.4)  # hair candidates: this band of rho, above the ear line
FAR = 2.0  # beyond this rho (above the chin): background
FAR_SIDE = 1.6  # beyond this |u| (above the cheeks): background seeds
CHI2_99 = 11.34  # chi-square 99% point, 3 degrees of freedom
MIN_SEED_FRACTION = 0.05  # of the crown band; fewer hair seeds: no hair
MAX_SEEDS = 1500  # colours per seed set (skin, background, hair) for the models
WORK_HALF_WIDTH = 48.0  # px, half jaw width in the resized crop


@dataclass(frozen=True)
class HeadFrame:
    """The head's frame in image pixels.

    Attributes:
        centre: ``[2]`` midpoint of landmarks 0 and 16 (the ear line), x, y.
        r: unit vector ``[2]`` across the face (ear 0 to ear 16).
        d: unit vector ``[2]`` down the face.
        half_width: half the distance from 0 to 16, px.
        up: forehead height above the ear line (to the estimated hairline), px.
        down: chin depth below the ear line, px.
        brow_top: ``v`` of the highest brow landmark (negative: above the ear line), px.
    """

    centre: np.ndarray
    r: np.ndarray
    d: np.ndarray
    half_width: float
    up: float
    down: float
    brow_top: float


def _coordinates(
    frame: HeadFrame, box: tuple[int, int, int, int], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``u``, ``v`` (px) and ``rho``, each ``[h, w]``, at the pixel centres of the crop
    ``box = (x0, y0, x1, y1)`` of the image resized to ``shape = (h, w)``."""
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    px = x0 + (xs + 0.5) * (x1 - x0) / shape[1] - 0.5 - frame.centre[0]
    py = y0 + (ys + 0.5) * (y1 - y0) / shape[0] - 0.5 - frame.centre[1]
    u = (px * frame.r[0] + py * frame.r[1]) / frame.half_width
    v = px * frame.d[0] + py * frame.d[1]
    vn = np.where(v < 0, v / max(frame.up, 1e-6), v / max(frame.down, 1e-6))
    return u, v, np.hypot(u, vn)


def _resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    small = cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return small >= 0.5


def _open(mask: np.ndarray) -> np.ndarray:
    """Morphological opening of ``bool [h, w]`` by a 3 x 3 square."""
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0


def _sample(colors: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return colors[rng.permutation(len(colors))[:n]]


def _models(hair: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GrabCut's colour models ``[1, 65]`` (not-hair, hair) learned from seed colours only."""
    sample = np.concatenate([hair, other])[None].astype(np.uint8)
    mask = np.full(sample.shape[:2], cv2.GC_BGD, np.uint8)
    mask[0, : len(hair)] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means draws from OpenCV's global RNG: be reproducible
    cv2.grabCut(sample, mask, None, bgd, fgd, 0, cv2.GC_INIT_WITH_MASK)
    return bgd, fgd


def _unexplained(colors: np.ndarray, model: np.ndarray, limit: float) -> np.ndarray:
    """``bool [N]``: colours ``[N, 3]`` outside every component of a GrabCut GMM ``[1, 65]``
    (squared Mahalanobis distance above the chi-square 99% point for 3 dof)."""
    weights, means = model[0, :5], model[0, 5:20].reshape(5, 3)
    covs = model[0, 20:].reshape(5, 3, 3) + 1e-2 * np.eye(3)
    x = colors.astype(np.float64)[:, None, :] - means[None]  # [N, 5, 3]
    d2 = np.einsum("nki,kij,nkj->nk", x, np.linalg.inv(covs), x)
    d2[:, weights <= 0] = np.inf
    return d2.min(1) > limit


def _background_like(
    colors: np.ndarray, basis: np.ndarray, far_colors: np.ndarray, far_basis: np.ndarray
) -> np.ndarray:
    """``bool [N]``: colours ``[N, 3]`` that a smooth background explains.

    The background is a quadratic colour field over the image fitted to the far seeds
    (``far_basis [M, 6]`` -> ``far_colors [M, 3]``), with their residual covariance: a pixel
    is background-like when its squared Mahalanobis residual is within ``CHI2_99``. Unlike a
    colour mixture, the field follows gradients of light across the background."""
    x, y = far_basis.astype(np.float64), far_colors.astype(np.float64)
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    resid = y - x @ coef
    icov = np.linalg.inv(np.cov(resid.T) + np.eye(3))
    r = colors.astype(np.float64) - basis @ coef
    return np.einsum("ni,ij,nj->n", r, icov, r) <= CHI2_99


def estimate_hair(
    image: np.ndarray, oval: np.ndarray, features: np.ndarray, frame: HeadFrame
) -> np.ndarray:
    """Hair mask ``bool [H, W]`` of an RGB ``uint8 [H, W, 3]`` image.

    Args:
        image: RGB ``uint8 [H, W, 3]``.
        oval: the face oval, ``bool [H, W]``.
        features: eyes, brows, nose and mouth together, ``bool [H, W]``.
        frame: the head's frame (see :class:`HeadFrame`).

    Returns:
        ``bool [H, W]``: hair, never inside the oval below the top of the brows.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"the hair estimate needs RGB uint8 [H, W, 3], got {image.shape}")
    H, W = image.shape[:2]
    hw, c = frame.half_width, frame.centre
    reach = FAR * max(hw, frame.up) + 2
    x0, x1 = int(max(0, np.floor(c[0] - reach))), int(min(W, np.ceil(c[0] + reach) + 1))
    y0 = int(max(0, np.floor(c[1] - reach)))
    y1 = int(min(H, np.ceil(c[1] + frame.down + 1.5 * hw) + 1))
    hair = np.zeros((H, W), bool)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return hair
    scale = WORK_HALF_WIDTH / max(hw, 1e-6)
    shape = (max(8, round((y1 - y0) * scale)), max(8, round((x1 - x0) * scale)))
    crop = np.ascontiguousarray(image[y0:y1, x0:x1, :3])
    if shape != crop.shape[:2]:
        interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        crop = cv2.resize(crop, (shape[1], shape[0]), interpolation=interp)
    inside = _resize_mask(oval[y0:y1, x0:x1], shape)
    feats = _resize_mask(features[y0:y1, x0:x1], shape)
    u, v, rho = _coordinates(frame, (x0, y0, x1, y1), shape)

    face_low = inside & (v > frame.brow_top)  # the face below the top of the brows
    skin = face_low & ~feats
    far = ((np.abs(u) > FAR_SIDE) | (rho > FAR)) & (v < 0.3 * frame.down)
    crown = (rho > CROWN[0]) & (rho <= CROWN[1]) & (v < 0) & ~face_low
    if skin.sum() < 16 or crown.sum() < 16:
        return hair
    crop = crop.copy()
    crop[cv2.dilate(feats.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0] = np.median(
        crop[skin], axis=0
    ).astype(np.uint8)
    rng = np.random.default_rng(0)
    other = np.concatenate(
        [_sample(crop[skin], MAX_SEEDS, rng), _sample(crop[far], MAX_SEEDS, rng)]
    )
    bgd, _ = _models(_sample(crop[crown], MAX_SEEDS, rng), other)
    seeds = crown.copy()
    seeds[crown] = _unexplained(crop[crown], bgd, CHI2_99)
    vh = v / hw
    basis = np.stack([np.ones_like(u), u, vh, u * u, u * vh, vh * vh], -1)
    use_field = far.sum() >= 32
    if use_field:
        seeds[seeds] = ~_background_like(crop[seeds], basis[seeds], crop[far], basis[far])
    if seeds.sum() < max(16, MIN_SEED_FRACTION * crown.sum()):
        return hair  # nothing on the crown unlike skin and background: no visible hair
    bgd, fgd = _models(_sample(crop[seeds], MAX_SEEDS, rng), other)
    mask = np.full(shape, cv2.GC_PR_BGD, np.uint8)
    mask[seeds] = cv2.GC_PR_FGD
    mask[((rho > FAR) & (v < 0.5 * frame.down)) | face_low] = cv2.GC_BGD
    cv2.grabCut(crop, mask, None, bgd, fgd, 1, cv2.GC_EVAL_FREEZE_MODEL)
    found = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)) & ~face_low
    if use_field:
        found[found] = ~_background_like(crop[found], basis[found], crop[far], basis[far])
    found = _open(found)
    n, comp = cv2.connectedComponents(found.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(comp[found & seeds])] = True
    keep[0] = False
    found = keep[comp]
    full = cv2.resize(found.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    _, v_full, _ = _coordinates(frame, (x0, y0, x1, y1), full.shape)
    hair[y0:y1, x0:x1] = (full >= 0.5) & ~(oval[y0:y1, x0:x1] & (v_full > frame.brow_top))
    return hair
