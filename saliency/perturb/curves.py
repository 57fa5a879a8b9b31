"""Deletion and insertion curves (Petsiuk et al., RISE, BMVC 2018; Samek et al. 2017), batched
in torch on the model's device.

Pixels are taken in order of attribution, highest first (a signed map's positive evidence
leads). Deletion replaces the first ``k`` pixels of the order with the fill image; insertion
starts from the fill image and restores them. At each of ``steps + 1`` evenly spaced
fractions ``k / HW`` the perturbed images go through the run's preprocessing and the model,
and the target class's probability is recorded. The area under each curve is the
trapezoid mean over the fractions (probability units, in [0, 1]). A random order with the
same fill is the reference (ROAD, Rong et al. 2022: the shape of what is removed can carry
information of its own, so each method is read against it). Ties in a map are broken by a
seeded random permutation, never by pixel position.
"""

from __future__ import annotations

import numpy as np
import torch

from saliency.models import outputs
from saliency.models.preprocess import Preprocessing, normalize
from saliency.perturb.fill_torch import fill_sources_batch


def pixel_order(maps: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each map's pixel positions ``[N, H*W]``, highest value first, ties in random order."""
    flat = maps.flatten(1).double()
    perm = random_order(*flat.shape, generator).to(flat.device)
    order = torch.argsort(flat.gather(1, perm), dim=1, descending=True, stable=True)
    return perm.gather(1, order)


def random_order(n: int, hw: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random pixel order per image ``[n, hw]`` (one batched draw)."""
    return torch.rand(n, hw, generator=generator, dtype=torch.float64).argsort(dim=1)


def fractions(steps: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, steps + 1)


@torch.no_grad()
def curves(
    model: torch.nn.Module,
    images: torch.Tensor,
    pre: Preprocessing,
    order: torch.Tensor,
    target: torch.Tensor,
    steps: int = 16,
    fill: str = "blur",
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves ``([N, steps + 1], [N, steps + 1])`` of the target
    class's probability.

    ``images``: ``uint8 [N, H, W, 3]`` at the model's input size; ``order [N, H*W]`` pixel
    positions (:func:`pixel_order`); ``target [N]`` class indices; ``fill``: ``blur``,
    ``mean`` or ``gray`` (as :func:`saliency.perturb.fill_torch.fill_sources_batch`)."""
    device = next(model.parameters()).device
    n, h, w, _ = images.shape
    images = images.to(device)
    source = fill_sources_batch(images, fill).permute(0, 3, 1, 2).float().div_(255)
    unit = images.permute(0, 3, 1, 2).float().div_(255)
    rank = torch.empty_like(order, device=device)
    rank.scatter_(1, order.to(device), torch.arange(h * w, device=device).expand(n, -1))
    rank = rank.view(n, 1, h, w)
    counts = np.round(fractions(steps) * h * w).astype(np.int64)
    target = target.to(device)
    deletion, insertion = [], []
    for k in counts:
        gone = rank < int(k)  # [N, 1, H, W]: the first k pixels of each order
        both = torch.cat([torch.where(gone, source, unit), torch.where(gone, unit, source)])
        probs = []
        for start in range(0, len(both), batch_size):
            logits = model(normalize(both[start : start + batch_size], pre)).float()
            probs.append(outputs.probabilities(logits))
        p = torch.cat(probs)
        t = torch.cat([target, target]).view(-1, 1)
        p = p.gather(1, t)[:, 0]
        deletion.append(p[:n])
        insertion.append(p[n:])
    return torch.stack(deletion, 1).cpu(), torch.stack(insertion, 1).cpu()


def area(curve: np.ndarray) -> np.ndarray:
    """Trapezoid area under curves ``[N, S + 1]`` sampled at evenly spaced fractions -> ``[N]``."""
    c = np.asarray(curve, dtype=np.float64)
    return (c[:, 1:] + c[:, :-1]).sum(1) / (2 * (c.shape[1] - 1))
