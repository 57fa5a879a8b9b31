"""Fold batch norm into the preceding convolutions, for attribution only.

In eval mode ``bn(conv(x))`` is one affine convolution, so folding changes no map beyond
float rounding and saves a pass over every activation, forward and backward. Used when the
folded model's logits match the original's within tolerance (:func:`fold_if_same`, IG's
preparation step).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from saliency.models.camnet import CamNet

TOLERANCE = 1e-3  # relative difference of logits allowed for the folded copy


def _fold_children(module: nn.Module) -> int:
    """Fold every conv directly followed by a batch norm (or by ``Sequential(bn, SE)``, our
    SE wrapping) inside ``module`` and its children; returns how many were folded.

    torchvision registers each pair next to each other (``conv1, bn1``; Inception's
    ``conv, bn``; a downsample's ``0, 1``), so neighbours are all that needs looking at.
    """
    folded = 0
    names = list(module._modules)
    for a, b in zip(names, names[1:], strict=False):
        conv, nxt = module._modules[a], module._modules[b]
        wrapped = isinstance(nxt, nn.Sequential) and len(nxt) > 0
        bn = nxt[0] if wrapped else nxt
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            module._modules[a] = fuse_conv_bn_eval(conv, bn)
            if wrapped:
                nxt[0] = nn.Identity()
            else:
                module._modules[b] = nn.Identity()
            folded += 1
    for child in module.children():
        folded += _fold_children(child)
    return folded


def fold_batchnorm(model: CamNet) -> CamNet:
    """An eval-mode copy of ``model`` with batch norm folded into convolutions, stored
    channels_last (faster convolutions forward and backward, on CPU as on CUDA)."""
    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        _fold_children(folded)
    folded = folded.to(memory_format=torch.channels_last)
    for p in folded.parameters():
        p.requires_grad_(False)
    return folded


def fold_if_same(
    model: CamNet, x: torch.Tensor, tolerance: float = TOLERANCE
) -> tuple[CamNet, str | None]:
    """The folded copy of ``model`` when its logits on ``x [N, 3, H, W]`` (normalized, as
    classified) match the model's within ``tolerance`` (relative to the largest logit, at
    least 1), else ``model`` and the note that says so."""
    folded = fold_batchnorm(model)
    with torch.no_grad():
        a, b = model(x), folded(x)
    if float((a - b).abs().max()) > tolerance * max(1.0, float(a.abs().max())):
        return model, "batch-norm folding changed the logits; IG ran on the unfolded model"
    return folded, None
