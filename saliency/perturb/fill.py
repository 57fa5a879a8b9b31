"""Dilated, feathered region masks for filling (ablation), and the reference blur fill.

DESIGN.md, "Regions": the reference recipe at 224 px dilates a region's mask with a 5 x 5
kernel (iterations eyes 4, nose 3, mouth 4, hair 4, brows 2, skin 0), feathers it with a
Gaussian of sigma 5 and alpha-blends a 15 x 15 box blur through it. At image side ``S``:
dilation radius ``2 * iterations * S / 224`` px, sigma ``5 * S / 224`` truncated at
3 sigma, box ``odd(15 * S / 224)``. For a non-square image ``S = sqrt(H * W)``.

The dilation uses a square of side ``2 r + 1``: ``k`` iterations with a 5 x 5 square are
exactly one dilation with a square of side ``4 k + 1``, so at 224 px this reproduces the
reference pixel for pixel, and at other sizes it is the same shape scaled (a disc would
differ from the reference even at 224 px). The feather is a Gaussian blur with an explicit
kernel of side ``2 ceil(3 sigma) + 1``: it is exactly 0 farther than ``r + ceil(3 sigma)``
px (Chebyshev distance) from the region. These masks are only for filling; rankings,
shares and overlaps use the exclusive, undilated label map.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from saliency.data.regions import REGION_CODES, REGIONS, check_region
from saliency.perturb.names import FILLS

REFERENCE_SIDE = 224
DILATION_ITERATIONS: dict[str, int] = {
    "eyes": 4,
    "brows": 2,
    "nose": 3,
    "mouth": 4,
    "skin": 0,
    "hair": 4,
}
FEATURES = ("eyes", "brows", "nose", "mouth")  # small regions a neighbour's fill may not touch
REFERENCE_SIGMA = 5.0
REFERENCE_BOX = 15


def image_side(shape: tuple[int, ...]) -> float:
    """``S`` of an image or label map of ``shape`` ``(H, W, ...)``: ``sqrt(H * W)`` px."""
    return math.sqrt(float(shape[0]) * float(shape[1]))


def dilation_radius(region: str, side: float) -> int:
    """Dilation radius in px of ``region`` at image side ``side``: 2 * iterations * S / 224."""
    iterations = DILATION_ITERATIONS[check_region(region)]
    return int(math.floor(2.0 * iterations * side / REFERENCE_SIDE + 0.5))


def feather_sigma(side: float) -> float:
    """Feather sigma in px at image side ``side``: 5 * S / 224."""
    return REFERENCE_SIGMA * side / REFERENCE_SIDE


def feather_half_width(side: float) -> int:
    """Half-width in px of the truncated Gaussian kernel: ``ceil(3 sigma)``."""
    return int(math.ceil(3.0 * feather_sigma(side) - 1e-9))


def box_size(side: float) -> int:
    """Side of the blur box at image side ``side``: the odd integer nearest 15 * S / 224."""
    return 2 * int(math.floor(REFERENCE_BOX * side / REFERENCE_SIDE / 2.0)) + 1


def fill_mask(labels: np.ndarray, region: str) -> np.ndarray:
    """Dilated, feathered mask of one region.

    Args:
        labels: exclusive region label map ``uint8 [H, W]`` (codes in regions.py).
        region: one of ``REGIONS``.

    Returns:
        ``float32 [H, W]`` in [0, 1]: 1 deep inside the dilated region, exactly 0 beyond
        ``dilation_radius + feather_half_width`` px (Chebyshev distance) from the region.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected a label map [H, W], got shape {labels.shape}")
    side = image_side(labels.shape)
    mask = (labels == REGION_CODES[check_region(region)]).astype(np.uint8)
    r = dilation_radius(region, side)
    if r > 0:
        mask = cv2.dilate(mask, np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    h = feather_half_width(side)
    # float64 keeps the kernel's sum at 1 to within float32 precision: 1 stays exactly 1
    soft = cv2.GaussianBlur(
        mask.astype(np.float64), (2 * h + 1, 2 * h + 1), feather_sigma(side), feather_sigma(side)
    )
    return np.clip(soft, 0.0, 1.0).astype(np.float32)


def fill_masks(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Fill masks of all six regions, ``{region: float32 [H, W]}`` in the order of REGIONS."""
    return {region: fill_mask(labels, region) for region in REGIONS}


def fill_source(image: np.ndarray, fill: str, seed: int = 0) -> np.ndarray:
    """What a region is replaced with, as a whole image ``uint8 [H, W, 3]``: ``blur`` the
    reference box blur, ``mean`` the image's own mean colour (removing colour cues a blur
    keeps), ``gray`` 128, ``noise`` seeded uniform noise."""
    if fill == "blur":
        k = box_size(image_side(image.shape))
        return cv2.blur(image, (k, k))
    if fill == "mean":
        return np.broadcast_to(np.rint(image.reshape(-1, 3).mean(0)), image.shape).astype(np.uint8)
    if fill == "gray":
        return np.full_like(image, 128)
    if fill == "noise":
        return np.random.default_rng(seed).integers(0, 256, image.shape, dtype=np.uint8)
    raise ValueError(f"unknown fill {fill!r}; valid: {', '.join(FILLS)}")


def blend(image: np.ndarray, source: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``image * (1 - alpha) + source * alpha`` rounded to ``uint8 [H, W, 3]``; pixels where
    ``alpha`` is 0 are the input's exactly, and where it is 1 the source's."""
    alpha = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)[..., None]
    mixed = image.astype(np.float32) * (1.0 - alpha) + source.astype(np.float32) * alpha
    out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return np.where(alpha > 0, out, image)


def blur_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The reference blur fill: alpha-blend a box blur of the image through ``mask``.

    Args:
        image: RGB ``uint8 [H, W, 3]``.
        mask: ``float [H, W]`` in [0, 1], e.g. from :func:`fill_mask`.

    Returns:
        ``uint8 [H, W, 3]``: ``image * (1 - mask) + box_blur(image) * mask``, rounded; pixels
        where the mask is 0 are the input's exactly. The box has side ``box_size(S)``.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected RGB uint8 [H, W, 3], got {image.dtype} {image.shape}")
    if np.shape(mask) != image.shape[:2]:
        raise ValueError(f"mask shape {np.shape(mask)} differs from the image's {image.shape[:2]}")
    return blend(image, fill_source(image, "blur"), mask)
