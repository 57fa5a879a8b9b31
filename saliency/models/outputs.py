"""From logits to probabilities, losses and per-class scores (DESIGN.md conventions).

One-logit models (``loss="bce"``): the logit ``z`` is the log-odds of ``classes[1]``; the
score of ``classes[1]`` is ``z`` and of ``classes[0]`` is ``-z``. Two-logit models
(``loss="ce"``): one logit per class, softmax probabilities.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """``[N, 1]`` or ``[N, K]`` logits -> ``[N, K]`` class probabilities (K >= 2)."""
    if logits.shape[1] == 1:
        p1 = torch.sigmoid(logits[:, 0])
        return torch.stack([1 - p1, p1], dim=1)
    return torch.softmax(logits, dim=1)


def class_scores(logits: torch.Tensor) -> torch.Tensor:
    """``[N, K]`` signed score per class (one logit: ``[-z, z]``)."""
    if logits.shape[1] == 1:
        return torch.cat([-logits, logits], dim=1)
    return logits


def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean BCE-with-logits (one logit) or cross-entropy; ``targets`` are class indices."""
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], targets.to(logits.dtype))
    return F.cross_entropy(logits, targets)


def predicted(logits: torch.Tensor) -> torch.Tensor:
    """Index of the more probable class, ``[N]`` int64."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)
