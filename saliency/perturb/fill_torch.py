"""The fills of :mod:`saliency.perturb.fill`, batched in torch on the model's device.

Same recipe, same numbers: the square dilation is a stride-1 max pool of side ``2 r + 1``,
taken as a row pool then a column pool (OpenCV's dilate ignores the border, as the pool's
-inf padding does); the feather is the same Gaussian kernel (``cv2.getGaussianKernel``)
applied separably with OpenCV's default border, reflect-101 (torch's ``reflect``); the box
blur sums the same reflect-101 window, which is exact for 8-bit pixels; blending repeats
:func:`saliency.perturb.fill.blend`'s float32 operations in the same order. On the CPU the
arithmetic is float64, as OpenCV's, and the bytes are the reference's; on an accelerator it is
float32 (:func:`work_dtype`). The CPU functions in :mod:`saliency.perturb.fill` stay the
reference; tests hold the two to at most one grey level apart, and in practice they agree
except where a feathered weight lands within rounding of a half level.

The noise fill draws its pixels with NumPy's seeded generator (as the reference does) and
takes them as an argument; everything else is computed here.
"""

from __future__ import annotations

import functools

import cv2
import torch
import torch.nn.functional as F

from saliency.data.regions import REGION_CODES, check_region
from saliency.perturb.fill import (
    FEATURES,
    FILLS,
    box_size,
    dilation_radius,
    feather_half_width,
    feather_sigma,
    image_side,
)
from saliency.runtime import full_float32_context


@functools.lru_cache(maxsize=16)
def _gaussian(side: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The feather's 1-D kernel ``[2 h + 1]``, exactly OpenCV's (float64 taps), on ``device``
    in ``dtype``; cached, since a copy from pageable memory to a GPU waits for the work
    queued before it."""
    h = feather_half_width(side)
    k = cv2.getGaussianKernel(2 * h + 1, feather_sigma(side), cv2.CV_64F)[:, 0]
    with torch.inference_mode(False):  # an ordinary tensor, whatever mode the first call ran in
        return torch.from_numpy(k).to(device=device, dtype=dtype)


def work_dtype(device: torch.device) -> torch.dtype:
    """The float type of the mask and blur arithmetic: float64 on the CPU (OpenCV's, so the
    bytes are the reference's), float32 on an accelerator, where float64 is slow (on an H100
    the float64 feather alone took 4.4 ms per 64 images, an eighth of the forward pass). Dilation
    and the box sums are exact in both (0/1 maxima; integer sums below 2^24); the feather
    differs in its last bits, which moves a blended pixel by one level only where a weight
    lands within rounding of a half level."""
    return torch.float64 if device.type == "cpu" else torch.float32


def _separable(x: torch.Tensor, side: float) -> torch.Tensor:
    """Correlate ``[M, 1, H, W]`` with the feather's kernel along x then y, reflect-101
    borders, in ``x``'s float type (TF32 off: true float32 on a GPU)."""
    kernel = _gaussian(side, x.device, x.dtype)
    h = kernel.numel() // 2
    with full_float32_context():
        x = F.conv2d(F.pad(x, (h, h, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
        return F.conv2d(F.pad(x, (0, 0, h, h), mode="reflect"), kernel.view(1, 1, -1, 1))


def fill_masks_batch(labels: torch.Tensor, regions: list[str]) -> torch.Tensor:
    """Dilated, feathered masks of ``regions`` for a batch of label maps.

    Args:
        labels: exclusive region codes ``uint8 [B, H, W]`` on any device.
        regions: region names.

    Returns:
        ``float32 [B, R, H, W]`` in [0, 1], :func:`saliency.perturb.fill.fill_mask` per map.
    """
    if labels.ndim != 3:
        raise ValueError(f"expected label maps [B, H, W], got shape {tuple(labels.shape)}")
    b, height, width = labels.shape
    side = image_side((height, width))
    dtype = work_dtype(labels.device)
    out = []
    for region in regions:
        m = (labels == REGION_CODES[check_region(region)]).to(dtype).unsqueeze(1)
        r = dilation_radius(region, side)
        if r > 0:  # a square max is a row max then a column max: 2 (2r + 1) reads, not (2r + 1)^2
            m = F.max_pool2d(m, (1, 2 * r + 1), stride=1, padding=(0, r))
            m = F.max_pool2d(m, (2 * r + 1, 1), stride=1, padding=(r, 0))
        out.append(m)
    stacked = torch.cat(out, 1).view(b * len(regions), 1, height, width)
    soft = _separable(stacked, side)
    return soft.clamp_(0.0, 1.0).to(torch.float32).view(b, len(regions), height, width)


def fill_sources_batch(
    images: torch.Tensor, fill: str, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """What regions are replaced with, ``uint8 [B, H, W, 3]``, for RGB ``uint8 [B, H, W, 3]``
    images; :func:`saliency.perturb.fill.fill_source` per image. ``noise`` (``uint8
    [B, H, W, 3]``, drawn as the reference draws it) is required for the noise fill."""
    if fill == "blur":
        k = box_size(image_side(images.shape[1:3]))
        p = k // 2
        x = images.permute(0, 3, 1, 2).to(work_dtype(images.device))
        x = F.pad(x, (p, p, p, p), mode="reflect")
        sums = F.avg_pool2d(x, k, stride=1, divisor_override=1)  # exact integer sums
        return sums.div_(k * k).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    if fill == "mean":
        mean = images.to(torch.float64).mean(dim=(1, 2)).round_().to(torch.uint8)
        return mean[:, None, None, :].expand_as(images)
    if fill == "gray":
        return torch.full_like(images, 128)
    if fill == "noise":
        if noise is None or noise.shape != images.shape:
            raise ValueError("the noise fill needs noise pixels shaped like the images")
        return noise.to(images.device)
    raise ValueError(f"unknown fill {fill!r}; valid: {', '.join(FILLS)}")


def blend_batch(images: torch.Tensor, source: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``images * (1 - alpha) + source * alpha`` rounded, ``uint8 [B, R, H, W, 3]``, for
    ``images``/``source`` ``uint8 [B, H, W, 3]`` and weights ``float32 [B, R, H, W]``;
    pixels with weight 0 are the input's exactly."""
    a = alpha.clamp(0.0, 1.0).unsqueeze(-1)
    img, src = images.unsqueeze(1).to(torch.float32), source.unsqueeze(1).to(torch.float32)
    mixed = (img * (1.0 - a) + src * a).round_().clamp_(0, 255).to(torch.uint8)
    return torch.where(a > 0, mixed, images.unsqueeze(1))


def ablated_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    regions: list[str],
    fill: str,
    mode: str,
    protect: bool = True,
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`saliency.perturb.variants.ablated` for a batch, on the tensors' device.

    Args:
        images: RGB ``uint8 [B, H, W, 3]``.
        labels: region codes ``uint8 [B, H, W]``.
        regions, fill, mode, protect: as ``ablated``.
        noise: ``uint8 [B, H, W, 3]``, the noise fill's pixels.

    Returns:
        variants ``uint8 [B, R, H, W, 3]`` and each region's area ``int64 [B, R]`` (px).
    """
    alpha = fill_masks_batch(labels, regions)
    # comparisons with Python ints: no code tensor to copy to the device (a pageable copy
    # would wait for the work queued before it)
    inside = torch.stack([labels == REGION_CODES[r] for r in regions], 1)  # [B, R, H, W]
    if mode == "keep":
        alpha = torch.where(inside, 0.0, 1.0 - alpha)
    elif mode == "delete" and protect:
        features = functools.reduce(torch.logical_or, [labels == REGION_CODES[f] for f in FEATURES])
        others = features.unsqueeze(1) & ~inside  # other features
        alpha = torch.where(others, 0.0, alpha)
    elif mode != "delete":
        raise ValueError(f"unknown mode {mode!r}; valid: delete, keep")
    source = fill_sources_batch(images, fill, noise)
    return blend_batch(images, source, alpha), inside.sum(dim=(2, 3))
