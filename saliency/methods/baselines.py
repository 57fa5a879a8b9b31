"""Integrated Gradients baselines, built in the model's input space (after normalization).

- ``black``: pixel value 0 put through the checkpoint's normalization
- ``blur``: the image blurred by a Gaussian (sigma in px, default S / 16, ``S = sqrt(H * W)`` as
  for the region fills)
- ``mean``: the training split's mean face (``[3, H, W]`` in [0, 1], given)
- ``noise``: seeded uniform noise in [0, 1], normalized
"""

from __future__ import annotations

import torch

from saliency.methods.names import BASELINES
from saliency.models.preprocess import Preprocessing, normalize


def make_baseline(
    kind: str,
    unit: torch.Tensor,
    pre: Preprocessing,
    mean_face: torch.Tensor | None = None,
    seed: int = 0,
    blur_sigma: float | None = None,
) -> torch.Tensor:
    """Baseline for a batch of images ``unit [N, 3, H, W]`` in [0, 1]; returns model input
    ``[N, 3, H, W]`` (or ``[1, 3, H, W]`` when the same for all images)."""
    if kind == "black":
        return normalize(torch.zeros_like(unit[:1]), pre)
    if kind == "blur":
        sigma = blur_sigma or (unit.shape[-2] * unit.shape[-1]) ** 0.5 / 16  # S = sqrt(HW)
        k = int(2 * round(3 * sigma) + 1)
        from torchvision.transforms.functional import gaussian_blur  # 1.4 s: when used

        return normalize(gaussian_blur(unit, [k, k], [sigma, sigma]), pre)
    if kind == "mean":
        if mean_face is None:
            raise ValueError(
                "the 'mean' baseline (IG's default) needs the training split's mean face: "
                "pass data={'mean_face': ...} (saliency.runs.mean_face) or choose another "
                "baseline"
            )
        return normalize(mean_face.to(unit.device, unit.dtype).unsqueeze(0), pre)
    if kind == "noise":
        gen = torch.Generator().manual_seed(seed)
        noise = torch.rand(unit.shape, generator=gen).to(unit.device, unit.dtype)
        return normalize(noise, pre)
    raise ValueError(f"unknown baseline {kind!r}; valid: {', '.join(BASELINES)}")
