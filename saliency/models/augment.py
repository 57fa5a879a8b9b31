"""Training augmentation on whole batches, on the model's device.

Horizontal flip, rotation, brightness/contrast jitter and random erasing on float images in
[0, 1] ``[N, 3, H, W]``. The draws come either from a ``torch.Generator`` (one sequence for
the batch) or, as training uses them, from :class:`SampleDraws`: counter-based uniforms per
sample, a hash of (seed, epoch, the sample's position in the epoch's order, draw number).
So an image's augmentation does not depend on the batch it lands in, nor on the rank that
takes it under torchrun, and a resumed run needs no generator state to redraw it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from saliency.models.recipe import Augmentation

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MASK64 = (1 << 64) - 1


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on ``uint64`` arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class SampleDraws:
    """Uniform draws in [0, 1) (float32, 24 bits, as ``torch.rand``) for the samples at
    ``positions`` ``[N]`` of epoch ``epoch`` of a run seeded ``seed``: the k-th draw of a
    sample is a hash of ``(seed, epoch, position, k)``, whatever else is in its batch."""

    def __init__(self, seed: int, epoch: int, positions: np.ndarray | torch.Tensor):
        pos = np.asarray(positions, dtype=np.int64).astype(np.uint64)
        with np.errstate(over="ignore"):
            key = _mix(np.array([seed & _MASK64], np.uint64) ^ _GOLDEN)
            key = _mix(key ^ np.uint64(epoch & _MASK64))
            self.keys = _mix(key + pos * _GOLDEN)  # [N]
        self.k = 0  # draws made so far per sample

    def __len__(self) -> int:
        return int(self.keys.size)

    def rand(self, m: int | None = None) -> torch.Tensor:
        """The next draw ``[N]`` of every sample, or the next ``m`` draws ``[N, m]``."""
        cols = 1 if m is None else m
        counter = np.arange(self.k + 1, self.k + cols + 1, dtype=np.uint64)
        self.k += cols
        with np.errstate(over="ignore"):
            h = _mix(self.keys[:, None] + counter[None, :] * _GOLDEN)  # [N, cols]
        u = torch.from_numpy((h >> np.uint64(40)).astype(np.float32)) * (1.0 / (1 << 24))
        return u[:, 0] if m is None else u


Draws = torch.Generator | SampleDraws


def _rand(src: Draws, n: int, m: int | None = None) -> torch.Tensor:
    """``[n]`` (or ``[n, m]``) uniforms in [0, 1) on the CPU from a generator or per sample."""
    if isinstance(src, SampleDraws):
        if len(src) != n:
            raise ValueError(f"{len(src)} samples' draws for a batch of {n}")
        return src.rand(m)
    return torch.rand(n, generator=src) if m is None else torch.rand(n, m, generator=src)


def augment(x: torch.Tensor, aug: Augmentation, gen: Draws) -> torch.Tensor:
    """Augment a batch ``[N, 3, H, W]`` in [0, 1]. ``gen``: a CPU ``torch.Generator`` (draws
    in sequence for the batch) or :class:`SampleDraws` for its N samples (draws per sample);
    either way the same draws in the same order: flip, angle, (shift x, shift y), contrast,
    brightness, the erase box's five."""
    n = x.shape[0]
    if n == 0:  # a rank's empty slice of a short last batch
        return x

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return (_rand(gen, n) * (hi - lo) + lo).to(x.device)

    if aug.hflip > 0:
        flip = (_rand(gen, n) < aug.hflip).to(x.device)
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(-1), x)
    if aug.rotation_deg > 0 or aug.shift > 0:
        theta = torch.zeros(n, device=x.device)
        if aug.rotation_deg > 0:
            theta = uniform(-aug.rotation_deg, aug.rotation_deg) * (math.pi / 180.0)
        cos, sin = torch.cos(theta), torch.sin(theta)
        tx = ty = torch.zeros_like(cos)
        if aug.shift > 0:  # drawn after the angle, so runs without shift keep their draws
            tx, ty = uniform(-2 * aug.shift, 2 * aug.shift), uniform(-2 * aug.shift, 2 * aug.shift)
        # affine_grid's coordinates are -1..1 along each axis: for an H x W image a rotation
        # in pixels is [[cos, -sin H/W], [sin W/H, cos]] there (H/W = 1: square, unchanged)
        aspect = x.shape[-2] / x.shape[-1]
        rows = [torch.stack([cos, -sin * aspect, tx], 1), torch.stack([sin / aspect, cos, ty], 1)]
        mat = torch.stack(rows, 1)
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


def erase_boxes(x: torch.Tensor, p: float, gen: Draws) -> torch.Tensor:
    """Random erasing: with probability ``p`` per image, one box of 2-33% of the image's area
    (aspect 0.3-3.3, log-uniform; sides clipped to the image) is filled with the image's own
    mean color, so the box adds no texture and no color of its own. Teaches the net to
    use all of a region's evidence, not only its most convenient corner. ``x [N, 3, H, W]``
    in [0, 1]; returns a new tensor. ``gen`` as for :func:`augment`."""
    n, _, h, w = x.shape
    draw = _rand(gen, n, 5).to(x.device, torch.float64)
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
