"""The model protocol: what attribution methods may use of a model (DESIGN.md, "Module
layout"). :class:`saliency.models.camnet.CamNet` meets it; an adopted model that meets it
gets every method that applies to it (``cam`` needs ``fc``: logits linear in the pooled
last block)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class ExplainableModel(Protocol):
    fc: nn.Linear | None  # the linear layer after global average pooling, when there is one

    @property
    def feature_layer(self) -> nn.Module:
        """The module whose output is ``forward_features``' (hook-based methods)."""
        ...

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last block's maps ``[N, C, h, w]`` for input ``[N, 3, H, W]``."""
        ...

    def head(self, maps: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, n_outputs]`` from the last block's maps."""
        ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...
