"""Training augmentation on whole batches, on the model's device, driven by one generator.

Horizontal flip, rotation and brightness/contrast jitter on float images in [0, 1]
``[N, 3, H, W]``; every random draw comes from the given ``torch.Generator`` so a resumed
run continues the same sequence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    hflip: float = 0.5  # probability
    rotation_deg: float = 10.0  # uniform in [-r, r]
    brightness: float = 0.2  # multiplicative factor in [1 - b, 1 + b]
    contrast: float = 0.2  # factor in [1 - c, 1 + c] around the image's mean gray

    def to_dict(self) -> dict:
        return asdict(self)


def augment(x: torch.Tensor, aug: Augmentation, gen: torch.Generator) -> torch.Tensor:
    """Augment a batch ``[N, 3, H, W]`` in [0, 1]; draws on CPU so ``gen`` lives on the CPU."""
    n = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return (torch.rand(n, generator=gen) * (hi - lo) + lo).to(x.device)

    if aug.hflip > 0:
        flip = (torch.rand(n, generator=gen) < aug.hflip).to(x.device)
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(-1), x)
    if aug.rotation_deg > 0:
        theta = uniform(-aug.rotation_deg, aug.rotation_deg) * (math.pi / 180.0)
        cos, sin = torch.cos(theta), torch.sin(theta)
        zero = torch.zeros_like(cos)
        mat = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        grid = F.affine_grid(mat.to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if aug.contrast > 0:
        c = uniform(1 - aug.contrast, 1 + aug.contrast).view(n, 1, 1, 1)
        gray = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - gray) * c + gray
    if aug.brightness > 0:
        x = x * uniform(1 - aug.brightness, 1 + aug.brightness).view(n, 1, 1, 1)
    return x.clamp_(0.0, 1.0)
