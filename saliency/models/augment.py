"""Training augmentation on whole batches, on the model's device, driven by one generator.

Horizontal flip, rotation, brightness/contrast jitter and random erasing on float images in
[0, 1] ``[N, 3, H, W]``; every random draw comes from the given ``torch.Generator`` so a
resumed run continues the same sequence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from saliency.models.recipe import Augmentation


def augment(x: torch.Tensor, aug: Augmentation, gen: torch.Generator) -> torch.Tensor:
    """Augment a batch ``[N, 3, H, W]`` in [0, 1]; draws on CPU so ``gen`` lives on the CPU."""
    n = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return (torch.rand(n, generator=gen) * (hi - lo) + lo).to(x.device)

    if aug.hflip > 0:
        flip = (torch.rand(n, generator=gen) < aug.hflip).to(x.device)
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(-1), x)
    if aug.rotation_deg > 0 or aug.shift > 0:
        theta = torch.zeros(n, device=x.device)
        if aug.rotation_deg > 0:
            theta = uniform(-aug.rotation_deg, aug.rotation_deg) * (math.pi / 180.0)
        cos, sin = torch.cos(theta), torch.sin(theta)
        tx = ty = torch.zeros_like(cos)
        if aug.shift > 0:  # drawn after the angle, so runs without shift keep their draws
            tx, ty = uniform(-2 * aug.shift, 2 * aug.shift), uniform(-2 * aug.shift, 2 * aug.shift)
        mat = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = F.affine_grid(mat.to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if aug.contrast > 0:
        c = uniform(1 - aug.contrast, 1 + aug.contrast).view(n, 1, 1, 1)
        gray = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - gray) * c + gray
    if aug.brightness > 0:
        x = x * uniform(1 - aug.brightness, 1 + aug.brightness).view(n, 1, 1, 1)
    x = x.clamp_(0.0, 1.0)
    if aug.erase > 0:
        x = erase_boxes(x, aug.erase, gen)
    return x


ERASE_AREA = (0.02, 0.33)  # fraction of the image (torchvision's RandomErasing defaults)
ERASE_ASPECT = (0.3, 3.3)  # box height / width


def erase_boxes(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Random erasing: with probability ``p`` per image, one box of 2-33% of the image's area
    (aspect 0.3-3.3, log-uniform; sides clipped to the image) is filled with the image's own
    mean color, so the box adds no texture and no color of its own. Teaches the net to
    use all of a region's evidence, not only its most convenient corner. ``x [N, 3, H, W]``
    in [0, 1]; returns a new tensor."""
    n, _, h, w = x.shape
    draw = torch.rand(n, 5, generator=gen).to(x.device, torch.float64)
    area = (ERASE_AREA[0] + draw[:, 0] * (ERASE_AREA[1] - ERASE_AREA[0])) * h * w
    lo, hi = math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1])
    aspect = torch.exp(lo + draw[:, 1] * (hi - lo))
    bh = torch.sqrt(area * aspect).round().clamp(1, h)
    bw = torch.sqrt(area / aspect).round().clamp(1, w)
    top = torch.floor(draw[:, 2] * (h - bh + 1))
    left = torch.floor(draw[:, 3] * (w - bw + 1))
    on = draw[:, 4] < p
    ys = torch.arange(h, device=x.device, dtype=torch.float64).view(1, h, 1)
    xs = torch.arange(w, device=x.device, dtype=torch.float64).view(1, 1, w)
    box = (ys >= top.view(n, 1, 1)) & (ys < (top + bh).view(n, 1, 1))
    box = box & (xs >= left.view(n, 1, 1)) & (xs < (left + bw).view(n, 1, 1))
    box = box & on.view(n, 1, 1)
    mean = x.mean(dim=(2, 3), keepdim=True)
    return torch.where(box.unsqueeze(1), mean, x)
