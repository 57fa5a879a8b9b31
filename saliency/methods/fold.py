"""Fold batch norm into the preceding convolutions, for attribution only.

In eval mode ``bn(conv(x))`` is one affine convolution, so folding changes no map beyond
float rounding and saves a pass over every activation, forward and backward. Used when the
folded model's logits match the original's within tolerance (checked by the caller).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from saliency.models.camnet import CamNet


def _fold_children(module: nn.Module) -> int:
    """Fold every (conv, bn) pair that follows each other inside ``module``; returns count."""
    folded = 0
    names = list(module._modules)
    for a, b in zip(names, names[1:], strict=False):
        conv, bn = module._modules[a], module._modules[b]
        if isinstance(bn, nn.Sequential) and len(bn) and isinstance(bn[0], nn.BatchNorm2d):
            target, inner = bn, 0  # SE-wrapped bn: Sequential(bn, SE)
            bn = bn[0]
        else:
            target, inner = None, None
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            module._modules[a] = fuse_conv_bn_eval(conv, bn)
            if target is None:
                module._modules[b] = nn.Identity()
            else:
                target[inner] = nn.Identity()
            folded += 1
    # ResNet blocks name their pairs conv1/bn1, conv2/bn2, ... with relu in between
    for k in range(1, 4):
        conv, bn = module._modules.get(f"conv{k}"), module._modules.get(f"bn{k}")
        inner = bn[0] if isinstance(bn, nn.Sequential) and len(bn) else bn
        if isinstance(conv, nn.Conv2d) and isinstance(inner, nn.BatchNorm2d):
            module._modules[f"conv{k}"] = fuse_conv_bn_eval(conv, inner)
            if isinstance(bn, nn.Sequential):
                bn[0] = nn.Identity()
            else:
                module._modules[f"bn{k}"] = nn.Identity()
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
