"""ResNet-18 feature extractor for the BiSeNet context path (no classifier, no downloads).

Submodule and parameter names follow ``resnet.py`` of zllrunning/face-parsing.PyTorch so
that its published checkpoint loads with ``strict=True``: ``conv1``, ``bn1``,
``layer1`` .. ``layer4``, each layer two :class:`BasicBlock` with ``conv1``, ``bn1``,
``conv2``, ``bn2`` and, where the shape changes, ``downsample`` (``0`` conv, ``1`` BN).

Unlike upstream, the constructor never fetches ImageNet weights: the parameters start from
PyTorch's default initialisation and are meant to be overwritten by a checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN with a residual shortcut: ``[N, C_in, H, W] -> [N, C_out, H/s, W/s]``."""

    def __init__(self, in_chan: int, out_chan: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chan, out_chan, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chan)
        self.conv2 = nn.Conv2d(out_chan, out_chan, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chan)
        self.downsample: nn.Sequential | None = None
        if in_chan != out_chan or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chan, out_chan, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_chan),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = F.relu(self.bn1(self.conv1(x)))
        residual = self.bn2(self.conv2(residual))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


def _layer(in_chan: int, out_chan: int, stride: int) -> nn.Sequential:
    """Two basic blocks; the first one carries the stride."""
    return nn.Sequential(BasicBlock(in_chan, out_chan, stride), BasicBlock(out_chan, out_chan))


class ResNet18(nn.Module):
    """ResNet-18 trunk returning the 1/8, 1/16 and 1/32 feature maps.

    ``forward(x [N, 3, H, W])`` returns ``feat8 [N, 128, H/8, W/8]``,
    ``feat16 [N, 256, H/16, W/16]`` and ``feat32 [N, 512, H/32, W/32]`` (sizes rounded up).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _layer(64, 64, stride=1)
        self.layer2 = _layer(64, 128, stride=2)
        self.layer3 = _layer(128, 256, stride=2)
        self.layer4 = _layer(256, 512, stride=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        feat32 = self.layer4(feat16)
        return feat8, feat16, feat32
