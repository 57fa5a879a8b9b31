"""One batched pass of Integrated Gradients' path: gradients of the target score at path points
of several images at once (the fixed rule and the adaptive one both run their passes here).

A path point of image ``i`` at ``alpha`` is ``b_i + alpha (x_i - b_i)``; its row gives the
target score ``S`` there and ``dS/dx`` (``[3, H, W]``). Rows of different images and alphas
share one model call, so a call is full whatever each image still needs.
"""

from __future__ import annotations

import torch

from saliency.methods.base import target_scores

__all__ = ["memory_format", "path_gradients"]


def memory_format(model: torch.nn.Module) -> torch.memory_format:
    """channels_last when the model's convolutions are stored that way (faster on CPU too)."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            if m.weight.is_contiguous(memory_format=torch.channels_last):
                return torch.channels_last
            break
    return torch.contiguous_format


def path_gradients(
    model: torch.nn.Module,
    baseline: torch.Tensor,
    diff: torch.Tensor,
    target: torch.Tensor,
    rows: torch.Tensor,
    alphas: torch.Tensor,
    layout: torch.memory_format = torch.contiguous_format,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores ``[n]`` and their input gradients ``[n, 3, H, W]`` at the points of image
    ``rows [n]`` (indices into ``baseline``, ``diff = x - baseline`` and ``target``, all
    ``[N, ...]``) at ``alphas [n]`` in [0, 1]. One model call: bound ``n`` yourself."""
    points = baseline[rows] + alphas.view(-1, 1, 1, 1) * diff[rows]
    points = points.contiguous(memory_format=layout).requires_grad_(True)
    with torch.enable_grad():
        score = target_scores(model(points), target[rows])
        (grads,) = torch.autograd.grad(score.sum(), points)
    return score.detach(), grads
