"""What every attribution method shares: the Method protocol, targets and score selection.

A method maps a model, an input batch ``x [N, 3, H, W]`` (exactly the tensor that was
classified) and target class indices ``[N]`` to raw maps ``[N, H, W]`` on the model's device,
for the target class of each row. Raw means signed where the method is signed, never
clipped or normalized: normalization is a separate, recorded step. Grid maps reach input
resolution through :func:`saliency.methods.geometry.upsample`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from saliency.models import outputs

if TYPE_CHECKING:
    import pandas as pd

    from saliency.models.camnet import CamNet
    from saliency.models.preprocess import Preprocessing

# what a method may need from the fused pass beyond the last block's maps and the logits,
# which every batch computes once (the prediction comes from them)
HEAD_GRADIENT = "head_gradient"  # dS_target/dA at the last block: one backward through the head
NEEDS = frozenset({HEAD_GRADIENT})
# what a method may need from the run (the stage supplies it once; ``Context.data``)
MEAN_FACE = "mean_face"  # the training images' mean [3, H, W] in [0, 1]
RUN_DATA = frozenset({MEAN_FACE})


@dataclass
class Context:
    """What one batch offers every method, computed once by the fused pass
    (:func:`saliency.methods.registry.explain_batch`).

    ``unit [N, 3, H, W]`` in [0, 1]; ``x`` is its normalized tensor, exactly what was
    classified; ``features [N, C, h, w]`` are the last block's maps of ``x``; ``target [N]``
    the class index explained per row; ``head_gradient [N, C, h, w]`` when a method needs it.
    ``settings`` maps a method's name to its own settings (an instance of its
    :attr:`Method.settings`), ``data`` holds the run data methods asked for (:data:`RUN_DATA`,
    e.g. ``mean_face [3, H, W]`` in [0, 1]) and ``prepared`` the model a method runs its own
    passes on (its :attr:`Method.prepare`'s result, e.g. a batch-norm-folded copy). Methods
    put per-row outputs beyond the maps in ``extras`` ``[N]``, under their
    :attr:`Method.columns` names (e.g. IG's completeness error)."""

    model: CamNet
    unit: torch.Tensor
    x: torch.Tensor
    pre: Preprocessing
    target: torch.Tensor
    features: torch.Tensor
    head_gradient: torch.Tensor | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    data: dict[str, torch.Tensor] = field(default_factory=dict)
    prepared: dict[str, torch.nn.Module] = field(default_factory=dict)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """One attribution method. ``compute(ctx)`` returns raw maps: ``[N, h, w]`` on the last
    block's grid when ``grid`` (the fused pass brings them to input size with the run's
    upsampling geometry), else ``[N, H, W]`` at input size. ``units`` is what a map value
    means (stored in meta.json); ``needs`` is a subset of :data:`NEEDS`. Methods use only
    the model protocol: ``forward_features``, ``head``, ``fc`` and ``forward``.

    What a method owns besides its maps (all optional; a method without them is just a name
    and a ``compute``):

    - ``settings``: its settings type, a torch-free dataclass (IG's ``IGConfig``); the fused
      pass gives ``compute`` an instance in ``ctx.settings[name]`` (the defaults if none).
    - ``columns``: the extra ``index.csv`` columns it fills from ``ctx.extras`` (``[N]`` each);
      ``column_types`` names the numpy type of those that are not float (``int64``, ``bool``).
    - ``prepare(model, settings, x [N, 3, H, W]) -> (model to run, note or None)``: once per
      run, a faster equivalent of the model for its own passes, checked on the normalized
      batch ``x`` (IG: the batch-norm-folded copy when its logits match; the note says why not).
    - ``data(settings) -> names``: the run data it needs (a subset of :data:`RUN_DATA`).
    - ``flagged(index, settings) -> int``: rows of its stored index its own check flags
      (IG: completeness error above its tolerance); ``flag_text(count, settings)`` says so.
    - ``summary(index, settings) -> str``: one line on what its own columns say about the
      stored maps (IG: path points per image, how many stopped at the cap).
    - ``refusal(model) -> str | None``: why it cannot explain ``model`` (cam without an fc).
    """

    name: str
    grid: bool
    units: str
    needs: frozenset[str]
    compute: Callable[[Context], torch.Tensor]
    settings: type | None = None
    columns: tuple[str, ...] = ()
    column_types: Mapping[str, str] = field(default_factory=dict)
    prepare: Callable[[CamNet, Any, torch.Tensor], tuple[CamNet, str | None]] | None = None
    data: Callable[[Any], frozenset[str]] | None = None
    flagged: Callable[[pd.DataFrame, Any], int] | None = None
    flag_text: Callable[[int, Any], str] | None = None  # (count, settings) -> the warning
    summary: Callable[[pd.DataFrame, Any], str] | None = None
    refusal: Callable[[CamNet], str | None] | None = None

    def __post_init__(self) -> None:
        if not self.needs <= NEEDS:
            raise ValueError(f"{self.name}: unknown needs {sorted(self.needs - NEEDS)}")
        if self.settings is not None and not dataclasses.is_dataclass(self.settings):
            raise TypeError(f"{self.name}: settings must be a dataclass type")

    def defaults(self) -> Any:
        """Its default settings (None for a method without settings)."""
        return None if self.settings is None else self.settings()

    def key(self, settings: Any) -> dict[str, Any]:
        """Its part of a resume key: its settings under its name (every field: maps made
        with other settings are never mixed with these), or nothing without settings."""
        return {} if settings is None else {self.name: dataclasses.asdict(settings)}

    def run_data(self, settings: Any) -> frozenset[str]:
        """The run data (:data:`RUN_DATA`) it needs with ``settings``."""
        wanted = frozenset() if self.data is None else self.data(settings)
        if not wanted <= RUN_DATA:
            raise ValueError(f"{self.name}: unknown run data {sorted(wanted - RUN_DATA)}")
        return wanted


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
