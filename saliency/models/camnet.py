"""CamNet: any feature extractor, then global average pooling, dropout and one linear layer.

This is the shape CAM needs: the class score is a weighted sum of the last feature maps'
spatial means, so ``fc.weight`` times ``forward_features`` is the class activation map.
"""

from __future__ import annotations

import torch
from torch import nn


class CamNet(nn.Module):
    """``forward_features`` -> ``[N, C, h, w]``; ``forward`` -> logits ``[N, n_outputs]``.

    ``n_outputs`` is 1 (one logit: log-odds of the second class) or the number of classes.
    """

    def __init__(self, features: nn.Module, channels: int, n_outputs: int, dropout: float = 0.3):
        super().__init__()
        self.features = features
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, n_outputs)
        self.channels = channels
        self.n_outputs = n_outputs

    @property
    def feature_layer(self) -> nn.Module:
        """The module whose output ``forward_features`` returns (for hook-based methods)."""
        children = list(self.features.children())
        return children[-1] if children else self.features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last block's maps ``[N, C, h, w]`` for input ``[N, 3, H, W]``."""
        return self.features(x)

    def head(self, maps: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, n_outputs]`` from last-block maps: GAP, dropout, linear."""
        return self.fc(self.dropout(maps.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
