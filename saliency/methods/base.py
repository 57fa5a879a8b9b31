"""What every attribution method shares: targets and score selection.

A method maps a model, an input batch ``x [N, 3, H, W]`` (exactly the tensor that was
classified) and target class indices ``[N]`` to raw maps ``[N, H, W]`` on the model's device,
for the target class of each row. Raw means signed where the method is signed, never
clipped or normalized: normalization is a separate, recorded step. Grid maps reach input
resolution through :func:`saliency.methods.geometry.upsample`.
"""

from __future__ import annotations

import torch

from saliency.models import outputs


def target_scores(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Score of each row's target class ``[N]``: one logit ``z`` gives ``z`` for class 1 and
    ``-z`` for class 0 (DESIGN.md), several logits give the target's logit."""
    scores = outputs.class_scores(logits)
    return scores.gather(1, target.view(-1, 1).to(scores.device)).squeeze(1)


def target_weights(fc: torch.nn.Linear, target: torch.Tensor) -> torch.Tensor:
    """The linear layer's weight vector for each row's target class ``[N, C]``."""
    w = fc.weight
    if w.shape[0] == 1:  # one logit: class 1 is +w, class 0 is -w
        sign = target.to(w.device, w.dtype).mul(2).sub(1).view(-1, 1)
        return sign * w[0]
    return w[target.to(w.device)]
