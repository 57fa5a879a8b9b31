"""Method names and one shared pass per batch that computes every requested map.

For a batch, the last block's maps ``A`` are computed once; the logits that decide the
prediction come from those same maps; CAM reuses ``A``; the whole Grad-CAM family shares one
backward through the head; IG runs its own path integral. Everything stays on the device.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from saliency.methods.base import target_weights
from saliency.methods.baselines import make_baseline
from saliency.methods.geometry import GridGeometry, grid_geometry, upsample
from saliency.methods.gradcam import COMBINE, head_gradients
from saliency.methods.ig import integrated_gradients
from saliency.methods.library_cams import LIBRARY_UNITS, library_cam
from saliency.methods.names import (
    BASELINES,
    GRADCAM_FAMILY,
    IG_METHODS,
    LIBRARY_METHODS,
    METHODS,
)
from saliency.models.camnet import CamNet
from saliency.models.preprocess import Preprocessing, normalize

assert tuple(COMBINE) == GRADCAM_FAMILY  # the names module lists the implemented variants
UNITS = {
    **{m: LIBRARY_UNITS for m in LIBRARY_METHODS},
    "cam": "target score (logit) per feature cell, signed; mean over the grid + bias = score",
    "ig": "target score per pixel (summed over channels), signed; sums to S(x) - S(baseline)",
    **{m: "raw weighted activation, signed, before ReLU and normalization" for m in GRADCAM_FAMILY},
}


@dataclass(frozen=True)
class IGConfig:
    n_steps: int = 32
    method: str = "gausslegendre"
    baseline: str = "black"
    seed: int = 0
    internal_batch: int = 128
    tolerance: float = 0.05  # completeness error above this is warned about

    def __post_init__(self) -> None:
        if self.method not in IG_METHODS:
            raise ValueError(f"unknown IG method {self.method!r}; valid: {', '.join(IG_METHODS)}")
        if self.baseline not in BASELINES:
            raise ValueError(f"unknown baseline {self.baseline!r}; valid: {', '.join(BASELINES)}")

    def to_dict(self) -> dict:
        return asdict(self)


def check_methods(names: list[str]) -> list[str]:
    unknown = [m for m in names if m not in METHODS]
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
    x = normalize(unit, pre)
    size = tuple(x.shape[-2:])
    family = [m for m in methods if m in GRADCAM_FAMILY]
    if geometry is None and (family or "cam" in methods):
        geometry = grid_geometry(model, size[-1])
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model.head(feats)
    target = choose_target(logits)
    maps: dict[str, torch.Tensor] = {}
    if "cam" in methods:
        w = target_weights(model.fc, target).to(feats.dtype)
        maps["cam"] = upsample(torch.einsum("nc,nchw->nhw", w, feats), size, geometry)
    if family:
        grads = head_gradients(model, feats, target)
        for m in family:
            maps[m] = upsample(COMBINE[m](feats, grads), size, geometry)
    for m in methods:
        if m in LIBRARY_METHODS:
            maps[m] = library_cam(model, x, target, m)
    result = BatchResult(logits=logits, maps=maps)
    if "ig" in methods:
        cfg = ig or IGConfig()
        base = make_baseline(cfg.baseline, unit, pre, mean_face, cfg.seed)
        res = integrated_gradients(
            ig_model or model, x, target, base, cfg.n_steps, cfg.method, cfg.internal_batch
        )
        maps["ig"] = res.maps
        result.ig_error, result.ig_delta = res.completeness_error, res.delta
    return result, target
