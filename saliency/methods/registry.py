"""The method registry and one fused pass per batch that computes every requested map.

For a batch, the last block's maps ``A`` are computed once, and the logits that decide the
prediction come from those same maps; the head gradient is computed once when any method
needs it (the whole Grad-CAM family shares that one backward); each method then computes
from what the pass shares (:class:`saliency.methods.base.Context`). Grid methods are brought
to input size by the run's upsampling geometry. Everything stays on the device.

Adding a method: one module that defines a :class:`~saliency.methods.base.Method`, one line
in ``REGISTRY`` below, and its name in :mod:`saliency.methods.names`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from saliency.methods import cam, gradcam, ig, library_cams
from saliency.methods.base import HEAD_GRADIENT, Context, Method
from saliency.methods.geometry import GridGeometry, grid_geometry, upsample
from saliency.methods.gradcam import head_gradients
from saliency.methods.ig import IGConfig
from saliency.methods.names import GRID_METHODS, METHODS
from saliency.models.camnet import CamNet
from saliency.models.preprocess import Preprocessing, normalize

REGISTRY: dict[str, Method] = {
    m.name: m for m in (cam.METHOD, *gradcam.METHODS, ig.METHOD, *library_cams.METHODS)
}
assert tuple(REGISTRY) == METHODS  # the names module lists exactly what is registered
assert tuple(m.name for m in REGISTRY.values() if m.grid) == GRID_METHODS
UNITS = {name: m.units for name, m in REGISTRY.items()}

__all__ = ["REGISTRY", "UNITS", "BatchResult", "IGConfig", "check_methods", "explain_batch"]


def check_methods(names: list[str]) -> list[str]:
    unknown = [m for m in names if m not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; valid: {', '.join(METHODS)}")
    if not names:
        raise ValueError(f"no method given; valid: {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


@dataclass
class BatchResult:
    logits: torch.Tensor  # [N, n_outputs], from the same tensor that is explained
    maps: dict[str, torch.Tensor]  # method -> [N, H, W]
    ig_error: torch.Tensor | None = None  # [N]
    ig_delta: torch.Tensor | None = None  # [N]


def explain_batch(
    model: CamNet,
    unit: torch.Tensor,
    pre: Preprocessing,
    methods: list[str],
    choose_target,
    ig: IGConfig | None = None,
    mean_face: torch.Tensor | None = None,
    ig_model: CamNet | None = None,
    geometry: GridGeometry | None = None,
) -> tuple[BatchResult, torch.Tensor]:
    """All requested maps for one batch of images ``unit [N, 3, H, W]`` in [0, 1].

    ``choose_target(logits) -> [N]`` picks each row's target class from the logits.
    ``ig_model`` (e.g. the batch-norm-folded copy) runs IG's many passes; the logits and
    the CAM-type maps always come from ``model`` itself, brought to input resolution by
    ``geometry`` (None: measured here; pass it in when explaining many batches).
    Returns the result and the targets.
    """
    chosen = [REGISTRY[m] for m in check_methods(methods)]
    x = normalize(unit, pre)
    size = tuple(x.shape[-2:])
    if geometry is None and any(m.grid for m in chosen):
        geometry = grid_geometry(model, size[-1])
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model.head(feats)
    target = choose_target(logits)
    ctx = Context(
        model, unit, x, pre, target, feats,
        options={"ig": ig or IGConfig(), "mean_face": mean_face, "ig_model": ig_model},
    )  # fmt: skip
    if any(HEAD_GRADIENT in m.needs for m in chosen):
        ctx.head_gradient = head_gradients(model, feats, target)
    maps = {}
    for m in chosen:
        out = m.compute(ctx)
        maps[m.name] = upsample(out, size, geometry) if m.grid else out
    result = BatchResult(logits, maps, ctx.extras.get("ig_error"), ctx.extras.get("ig_delta"))
    return result, target
