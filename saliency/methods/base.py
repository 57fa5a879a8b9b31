"""What every attribution method shares: the Method protocol, targets and score selection.

A method maps a model, an input batch ``x [N, 3, H, W]`` (exactly the tensor that was
classified) and target class indices ``[N]`` to raw maps ``[N, H, W]`` on the model's device,
for the target class of each row. Raw means signed where the method is signed, never
clipped or normalized: normalization is a separate, recorded step. Grid maps reach input
resolution through :func:`saliency.methods.geometry.upsample`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from saliency.models import outputs

if TYPE_CHECKING:
    from saliency.models.camnet import CamNet
    from saliency.models.preprocess import Preprocessing

# what a method may need from the fused pass beyond the last block's maps and the logits,
# which every batch computes once (the prediction comes from them)
HEAD_GRADIENT = "head_gradient"  # dS_target/dA at the last block: one backward through the head
NEEDS = frozenset({HEAD_GRADIENT})


@dataclass
class Context:
    """What one batch offers every method, computed once by the fused pass
    (:func:`saliency.methods.registry.explain_batch`).

    ``unit [N, 3, H, W]`` in [0, 1]; ``x`` is its normalized tensor, exactly what was
    classified; ``features [N, C, h, w]`` are the last block's maps of ``x``; ``target [N]``
    the class index explained per row; ``head_gradient [N, C, h, w]`` when a method needs it.
    ``options`` holds methods' own settings (e.g. ``"ig"``); methods put outputs beyond the
    maps in ``extras`` (e.g. IG's completeness error)."""

    model: CamNet
    unit: torch.Tensor
    x: torch.Tensor
    pre: Preprocessing
    target: torch.Tensor
    features: torch.Tensor
    head_gradient: torch.Tensor | None = None
    options: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """One attribution method. ``compute(ctx)`` returns raw maps: ``[N, h, w]`` on the last
    block's grid when ``grid`` (the fused pass brings them to input size with the run's
    upsampling geometry), else ``[N, H, W]`` at input size. ``units`` is what a map value
    means (stored in meta.json); ``needs`` is a subset of :data:`NEEDS`. Methods use only
    the model protocol: ``forward_features``, ``head``, ``fc`` and ``forward``."""

    name: str
    grid: bool
    units: str
    needs: frozenset[str]
    compute: Callable[[Context], torch.Tensor]

    def __post_init__(self) -> None:
        if not self.needs <= NEEDS:
            raise ValueError(f"{self.name}: unknown needs {sorted(self.needs - NEEDS)}")


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
