"""The Grad-CAM family at the last block, in torch, batched and raw.

Backward starts at the last block's maps ``A [N, C, h, w]`` (computed once without a graph),
so it costs one pass through the head. Formulas follow the papers and pytorch-grad-cam:

- gradcam (Selvaraju et al.): ``sum_c mean_hw(dS/dA_c) A_c``
- gradcam++ (Chattopadhay et al.): weights ``sum_hw relu(g) * a`` with
  ``a = g^2 / (2 g^2 + sum_hw(A) g^3)``
- xgradcam (Fu et al.): weights ``sum_hw g * A / sum_hw(A)``
- layercam (Jiang et al.): ``sum_c relu(g) * A`` per cell
- hirescam (Draelos and Carin): ``sum_c g * A`` per cell

Maps are returned before any ReLU or normalization (pytorch-grad-cam applies both).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from saliency.methods.base import HEAD_GRADIENT, Context, Method, target_scores
from saliency.methods.geometry import GridGeometry, grid_geometry, upsample
from saliency.models.camnet import CamNet

EPS_PP = 1e-6  # gradcam++ stabilizer, as in pytorch-grad-cam
EPS_X = 1e-7  # xgradcam stabilizer, as in pytorch-grad-cam


def head_gradients(model: CamNet, maps: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``dS_target/dA`` for last-block maps ``A [N, C, h, w]``: a backward through the head."""
    maps = maps.detach().requires_grad_(True)
    with torch.enable_grad():
        score = target_scores(model.head(maps), target)
        (grads,) = torch.autograd.grad(score.sum(), maps)
    return grads


def maps_and_gradients(
    model: CamNet, x: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Last-block maps ``A`` and ``dS_target/dA``, both ``[N, C, h, w]``."""
    with torch.no_grad():
        maps = model.forward_features(x)
    return maps, head_gradients(model, maps, target)


def _gradcam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return torch.einsum("nc,nchw->nhw", g.mean(dim=(2, 3)), a)


def _gradcam_pp(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    g2, g3 = g.pow(2), g.pow(3)
    sum_a = a.sum(dim=(2, 3), keepdim=True)
    aij = g2 / (2 * g2 + sum_a * g3 + EPS_PP)
    aij = torch.where(g != 0, aij, torch.zeros_like(aij))
    weights = (g.clamp(min=0) * aij).sum(dim=(2, 3))
    return torch.einsum("nc,nchw->nhw", weights, a)


def _xgradcam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    sum_a = a.sum(dim=(2, 3), keepdim=True)
    weights = (g * a / (sum_a + EPS_X)).sum(dim=(2, 3))
    return torch.einsum("nc,nchw->nhw", weights, a)


def _layercam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (g.clamp(min=0) * a).sum(dim=1)


def _hirescam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (g * a).sum(dim=1)


COMBINE: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "gradcam": _gradcam,
    "gradcam++": _gradcam_pp,
    "xgradcam": _xgradcam,
    "layercam": _layercam,
    "hirescam": _hirescam,
}


def grad_cam_grid(
    model: CamNet, x: torch.Tensor, target: torch.Tensor, variant: str = "gradcam"
) -> torch.Tensor:
    """Raw map of ``variant`` on the last block's grid ``[N, h, w]``, through the same
    :data:`METHODS` entry the fused pass of ``explain`` runs."""
    if variant not in COMBINE:
        raise ValueError(f"unknown Grad-CAM variant {variant!r}; valid: {', '.join(COMBINE)}")
    a, g = maps_and_gradients(model, x, target)
    method = next(m for m in METHODS if m.name == variant)
    return method.compute(Context(model, x, x, None, target, a, head_gradient=g))


def grad_cam(
    model: CamNet,
    x: torch.Tensor,
    target: torch.Tensor,
    variant: str = "gradcam",
    geometry: GridGeometry | None = None,
) -> torch.Tensor:
    """Raw map of ``variant`` at input resolution ``[N, H, W]``; cells placed by
    ``geometry`` (default: the model's measured receptive-field geometry)."""
    geometry = geometry or grid_geometry(model, tuple(x.shape[-2:]))
    return upsample(grad_cam_grid(model, x, target, variant), tuple(x.shape[-2:]), geometry)


UNITS = "raw weighted activation, signed, before ReLU and normalization"


def _method(variant: str) -> Method:
    combine = COMBINE[variant]

    def compute(ctx: Context) -> torch.Tensor:
        return combine(ctx.features, ctx.head_gradient)

    return Method(variant, True, UNITS, frozenset({HEAD_GRADIENT}), compute)


METHODS: tuple[Method, ...] = tuple(_method(v) for v in COMBINE)
