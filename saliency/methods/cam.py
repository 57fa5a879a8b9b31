"""CAM (Zhou et al. 2016): the target class's FC weights times the last block's maps.

For a GAP -> FC net, ``mean_hw(cam) + bias`` equals the target score, so CAM is the exact
spatial decomposition of the logit. Signed; one forward pass, no backward.
"""

from __future__ import annotations

import torch

from saliency.methods.base import Context, Method, target_weights
from saliency.methods.geometry import GridGeometry, grid_geometry, upsample
from saliency.models.camnet import CamNet


def cam_from_features(model: CamNet, maps: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CAM on the grid ``[N, h, w]`` from last-block maps ``[N, C, h, w]`` already computed
    (the fused pass in :mod:`saliency.methods.registry` shares them)."""
    w = target_weights(model.fc, target).to(maps.dtype)
    return torch.einsum("nc,nchw->nhw", w, maps)


@torch.no_grad()
def cam_grid(model: CamNet, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CAM on the last block's grid ``[N, h, w]`` (logit units per cell, before the mean),
    through the same :data:`METHOD` the fused pass of ``explain`` runs."""
    ctx = Context(model, x, x, None, target, model.forward_features(x))
    return METHOD.compute(ctx)


def cam(
    model: CamNet, x: torch.Tensor, target: torch.Tensor, geometry: GridGeometry | None = None
) -> torch.Tensor:
    """CAM at input resolution ``[N, H, W]``, signed, in logit units; cells placed by
    ``geometry`` (default: the model's measured receptive-field geometry)."""
    geometry = geometry or grid_geometry(model, tuple(x.shape[-2:]))
    return upsample(cam_grid(model, x, target), tuple(x.shape[-2:]), geometry)


def _refusal(model: CamNet) -> str | None:
    """Why CAM cannot explain ``model``: it needs the linear layer after global pooling."""
    if getattr(model, "fc", None) is not None:
        return None
    reason = getattr(model, "cam_refusal", "")
    return f"cam does not apply to this model: {reason}; use gradcam or ig"


METHOD = Method(
    name="cam",
    grid=True,
    units="target score (logit) per feature cell, signed; mean over the grid + bias = score",
    needs=frozenset(),
    compute=lambda ctx: cam_from_features(ctx.model, ctx.features, ctx.target),
    refusal=_refusal,
)
