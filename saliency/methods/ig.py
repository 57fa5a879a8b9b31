"""Integrated Gradients (Sundararajan et al. 2017), batched over images and path steps.

``attr = (x - b) * sum_k w_k * dS/dx(b + a_k (x - b))`` with the quadrature nodes ``a_k`` and
weights ``w_k`` of the rules captum offers (``gausslegendre`` by default, from numpy's
``leggauss``, or the Riemann rules), so results equal captum's IntegratedGradients at the
same ``n_steps`` and ``method`` (tested against captum's public API), except that our
trapezoid weights sum to 1 (captum's to ``(n - 1) / n``; see :func:`quadrature`). Maps are the
per-pixel sum over channels (signed, score units); the completeness error
``|sum(attr) - (S(x) - S(b))| / |S(x) - S(b)|`` of every image is returned with them.
Baselines are built by :mod:`saliency.methods.baselines`. The method owns its settings
(:class:`IGConfig`, torch-free in :mod:`saliency.methods.ig_settings`), its ``index.csv``
columns and its preparation step (batch-norm folding, :mod:`saliency.methods.fold`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from saliency.methods.base import MEAN_FACE, Context, Method, target_scores
from saliency.methods.baselines import make_baseline
from saliency.methods.fold import fold_if_same
from saliency.methods.ig_settings import IGConfig
from saliency.methods.names import IG_METHODS
from saliency.models.camnet import CamNet

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["METHOD", "IGConfig", "IGResult", "integrated_gradients", "quadrature"]
METHODS = IG_METHODS


def quadrature(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``alpha [n]`` in [0, 1] and weights ``w [n]`` (summing to 1) of ``method``.

    Gauss-Legendre maps numpy's nodes on [-1, 1] to [0, 1]; the Riemann rules use ``n``
    equal steps, as captum does. Trapezoid: ``n`` points from 0 to 1, ``n - 1`` intervals,
    half weight at the ends. (captum gives its trapezoid points weight ``1 / n``, so its
    weights sum to ``(n - 1) / n`` and its maps are that factor too small; ours sum to 1.)
    """
    if method not in METHODS:
        raise ValueError(f"unknown IG method {method!r}; valid: {', '.join(METHODS)}")
    if method == "gausslegendre":
        if n_steps < 1:
            raise ValueError("IG needs at least 1 step with gausslegendre")
        x, w = np.polynomial.legendre.leggauss(n_steps)
        return 0.5 * (1.0 + x), 0.5 * w
    if n_steps < 2:
        raise ValueError("IG needs at least 2 steps with the Riemann rules")
    n = n_steps
    weights = np.full(n, 1.0 / n)
    rule = method.split("_")[-1]
    if rule == "trapezoid":
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2
        alphas = np.linspace(0.0, 1.0, n)
    elif rule == "left":
        alphas = np.linspace(0.0, 1.0 - 1.0 / n, n)
    elif rule == "right":
        alphas = np.linspace(1.0 / n, 1.0, n)
    else:  # middle
        alphas = np.linspace(1.0 / (2 * n), 1.0 - 1.0 / (2 * n), n)
    return alphas, weights


def _memory_format(model: torch.nn.Module) -> torch.memory_format:
    """channels_last when the model's convolutions are stored that way (faster on CPU too)."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            if m.weight.is_contiguous(memory_format=torch.channels_last):
                return torch.channels_last
            break
    return torch.contiguous_format


@dataclass
class IGResult:
    maps: torch.Tensor  # [N, H, W], channel-summed attribution
    attributions: torch.Tensor  # [N, 3, H, W]
    completeness_error: torch.Tensor  # [N], relative
    delta: torch.Tensor  # [N], S(x) - S(b)


def integrated_gradients(
    model: CamNet,
    x: torch.Tensor,
    target: torch.Tensor,
    baseline: torch.Tensor,
    n_steps: int = 32,
    method: str = "gausslegendre",
    internal_batch: int = 128,
) -> IGResult:
    """IG for a batch ``x [N, 3, H, W]`` against ``baseline`` (same shape, or ``[1, 3, H, W]``).

    ``internal_batch`` bounds how many path points go through the model at once.
    """
    nodes, steps = quadrature(method, n_steps)
    weights = torch.tensor(steps, dtype=x.dtype, device=x.device)
    alphas = torch.tensor(nodes, dtype=x.dtype, device=x.device)
    baseline = baseline.to(x.device, x.dtype).expand_as(x)
    diff = x - baseline
    n = x.shape[0]
    total = torch.zeros_like(x)
    layout = _memory_format(model)
    # path points ordered image-major: (image i, step k) -> row i * n_steps + k
    pairs = torch.cartesian_prod(
        torch.arange(n, device=x.device), torch.arange(n_steps, device=x.device)
    )
    for chunk in pairs.split(max(1, internal_batch)):
        i, k = chunk[:, 0], chunk[:, 1]
        points = baseline[i] + alphas[k].view(-1, 1, 1, 1) * diff[i]
        points = points.contiguous(memory_format=layout).requires_grad_(True)
        with torch.enable_grad():
            score = target_scores(model(points), target.to(x.device)[i])
            (grads,) = torch.autograd.grad(score.sum(), points)
        total.index_add_(0, i, grads * weights[k].view(-1, 1, 1, 1))
    attributions = diff * total
    with torch.no_grad():
        s_x = target_scores(model(x), target.to(x.device))
        s_b = target_scores(model(baseline), target.to(x.device))
    delta = s_x - s_b
    error = (attributions.sum(dim=(1, 2, 3)) - delta).abs() / delta.abs().clamp(min=1e-12)
    return IGResult(attributions.sum(dim=1), attributions, error, delta)


NAME = "ig"
COLUMNS = ("ig_error", "ig_delta")  # index.csv: relative completeness error, S(x) - S(b)


def _compute(ctx: Context) -> torch.Tensor:
    """IG maps ``[N, H, W]``; the completeness error and ``S(x) - S(b)`` (``[N]`` each) go to
    ``extras`` as :data:`COLUMNS`. Reads its :class:`IGConfig` from ``ctx.settings``, the mean
    face (``[3, H, W]``, for the mean baseline) from ``ctx.data`` and runs its path passes on
    ``ctx.prepared``'s model (the batch-norm-folded copy) when there is one."""
    cfg = ctx.settings.get(NAME) or IGConfig()
    base = make_baseline(cfg.baseline, ctx.unit, ctx.pre, ctx.data.get(MEAN_FACE), cfg.seed)
    model = ctx.prepared.get(NAME) or ctx.model
    res = integrated_gradients(
        model, ctx.x, ctx.target, base, cfg.n_steps, cfg.method, cfg.internal_batch
    )
    ctx.extras[COLUMNS[0]], ctx.extras[COLUMNS[1]] = res.completeness_error, res.delta
    return res.maps


def _prepare(model: CamNet, cfg: IGConfig, x: torch.Tensor) -> tuple[CamNet, str | None]:
    """The batch-norm-folded copy for the path passes when its logits on ``x`` match."""
    return fold_if_same(model, x)


def _flagged(index: pd.DataFrame, cfg: IGConfig) -> int:
    """Rows whose completeness error exceeds ``cfg.tolerance``."""
    return int((index[COLUMNS[0]] > cfg.tolerance).sum())


METHOD = Method(
    name=NAME,
    grid=False,
    units="target score per pixel (summed over channels), signed; sums to S(x) - S(baseline)",
    needs=frozenset(),
    compute=_compute,
    settings=IGConfig,
    columns=COLUMNS,
    prepare=_prepare,
    data=lambda cfg: frozenset({MEAN_FACE}) if cfg.baseline == "mean" else frozenset(),
    flagged=_flagged,
    flag_text=lambda n, cfg: (
        f"{n} image(s) have an IG completeness error above {cfg.tolerance:.0%}; raise "
        "--ig-n-steps (see ig_error in index.csv)"
    ),
)
