"""Integrated Gradients (Sundararajan et al. 2017), batched over images and path steps.

``attr = (x - b) * sum_k w_k * dS/dx(b + a_k (x - b))``. Two ways to choose the nodes ``a_k``
and weights ``w_k`` (``IGConfig.n_steps``):

- ``auto`` (the default): each image on its own nested trapezoid levels until its map is
  complete and settled, or capped (:mod:`saliency.methods.ig_adaptive`, :func:`adaptive`);
- a number: that many nodes of a rule captum offers for every image (``gausslegendre`` by
  default, from numpy's ``leggauss``, or the Riemann rules), so results equal captum's
  IntegratedGradients at the same ``n_steps`` and ``method`` (tested against captum's public
  API), except that our trapezoid weights sum to 1 (captum's to ``(n - 1) / n``; see
  :func:`quadrature`).

Maps are the per-pixel sum over channels (signed, score units); every image's completeness
error ``|sum(attr) - (S(x) - S(b))| / |S(x) - S(b)|``, its ``S(x) - S(b)``, the path points it
took and whether it stopped incomplete are returned with them (``index.csv``'s
:data:`COLUMNS`). Baselines are built by :mod:`saliency.methods.baselines`. The method owns
its settings (:class:`IGConfig`, torch-free in :mod:`saliency.methods.ig_settings`), its
``index.csv`` columns and its preparation step (batch-norm folding,
:mod:`saliency.methods.fold`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from saliency.methods.base import MEAN_FACE, Context, Method, target_scores
from saliency.methods.baselines import make_baseline
from saliency.methods.fold import fold_if_same
from saliency.methods.ig_adaptive import adaptive_integrated_gradients, incomplete
from saliency.methods.ig_path import memory_format, path_gradients
from saliency.methods.ig_settings import IGConfig
from saliency.methods.names import IG_METHODS
from saliency.models.camnet import CamNet

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["METHOD", "IGConfig", "IGResult", "adaptive", "integrated_gradients", "quadrature"]
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


@dataclass
class IGResult:
    maps: torch.Tensor  # [N, H, W], channel-summed attribution
    attributions: torch.Tensor  # [N, 3, H, W]
    completeness_error: torch.Tensor  # [N], relative
    delta: torch.Tensor  # [N], S(x) - S(b)
    steps: torch.Tensor  # [N] int64, path points each image took
    capped: torch.Tensor  # [N] bool, not complete at the last path point it was given


def integrated_gradients(
    model: CamNet,
    x: torch.Tensor,
    target: torch.Tensor,
    baseline: torch.Tensor,
    n_steps: int = 32,
    method: str = "gausslegendre",
    internal_batch: int = 128,
    tolerance: float = 0.05,
    abs_floor: float = 0.05,
) -> IGResult:
    """IG for a batch ``x [N, 3, H, W]`` against ``baseline`` (same shape, or ``[1, 3, H, W]``),
    ``n_steps`` nodes of ``method`` for every image (captum's rule).

    ``internal_batch`` bounds how many path points go through the model at once. An image
    whose completeness error is above ``max(tolerance |delta|, abs_floor)`` is ``capped``
    (the fixed count was its cap).
    """
    nodes, steps = quadrature(method, n_steps)
    weights = torch.tensor(steps, dtype=x.dtype, device=x.device)
    alphas = torch.tensor(nodes, dtype=x.dtype, device=x.device)
    baseline = baseline.to(x.device, x.dtype).expand_as(x)
    diff = x - baseline
    target = target.to(x.device)
    n = x.shape[0]
    total = torch.zeros_like(x)
    layout = memory_format(model)
    # path points ordered image-major: (image i, step k) -> row i * n_steps + k
    pairs = torch.cartesian_prod(
        torch.arange(n, device=x.device), torch.arange(n_steps, device=x.device)
    )
    for chunk in pairs.split(max(1, internal_batch)):
        i, k = chunk[:, 0], chunk[:, 1]
        _, grads = path_gradients(model, baseline, diff, target, i, alphas[k], layout)
        total.index_add_(0, i, grads * weights[k].view(-1, 1, 1, 1))
    attributions = diff * total
    with torch.no_grad():
        s_x = target_scores(model(x), target)
        s_b = target_scores(model(baseline), target)
    delta = s_x - s_b
    miss = (attributions.sum(dim=(1, 2, 3)) - delta).abs()
    error = miss / delta.abs().clamp(min=1e-12)
    steps_taken = torch.full((n,), n_steps, dtype=torch.long, device=x.device)
    capped = incomplete(miss, delta, tolerance, abs_floor)
    return IGResult(attributions.sum(dim=1), attributions, error, delta, steps_taken, capped)


def adaptive(
    model: CamNet,
    x: torch.Tensor,
    target: torch.Tensor,
    baseline: torch.Tensor,
    cfg: IGConfig,
) -> IGResult:
    """IG for ``x [N, 3, H, W]`` with each image refined until complete
    (:mod:`saliency.methods.ig_adaptive`), with ``cfg``'s tolerance, floor, cap and batch."""
    res = adaptive_integrated_gradients(
        model, x, target, baseline, cfg.tolerance, cfg.abs_floor, cfg.cap, cfg.internal_batch
    )
    attr = res.attributions
    return IGResult(attr.sum(dim=1), attr, res.error, res.delta, res.steps, res.capped)


NAME = "ig"
# index.csv: relative completeness error, S(x) - S(b), path points taken, stopped incomplete
COLUMNS = ("ig_error", "ig_delta", "ig_steps", "ig_capped")
COLUMN_TYPES = {"ig_steps": "int64", "ig_capped": "bool"}


def _compute(ctx: Context) -> torch.Tensor:
    """IG maps ``[N, H, W]``; the completeness error and ``S(x) - S(b)`` (``[N]`` each) go to
    ``extras`` as :data:`COLUMNS`. Reads its :class:`IGConfig` from ``ctx.settings``, the mean
    face (``[3, H, W]``, for the mean baseline) from ``ctx.data`` and runs its path passes on
    ``ctx.prepared``'s model (the batch-norm-folded copy) when there is one."""
    cfg = ctx.settings.get(NAME) or IGConfig()
    base = make_baseline(cfg.baseline, ctx.unit, ctx.pre, ctx.data.get(MEAN_FACE), cfg.seed)
    model = ctx.prepared.get(NAME) or ctx.model
    if cfg.adaptive:
        res = adaptive(model, ctx.x, ctx.target, base, cfg)
    else:
        res = integrated_gradients(model, ctx.x, ctx.target, base, cfg.n_steps, cfg.method,
                                   cfg.internal_batch, cfg.tolerance, cfg.abs_floor)  # fmt: skip
    for column, value in zip(COLUMNS, (res.completeness_error, res.delta, res.steps, res.capped),
                             strict=True):  # fmt: skip
        ctx.extras[column] = value
    return res.maps


def _prepare(model: CamNet, cfg: IGConfig, x: torch.Tensor) -> tuple[CamNet, str | None]:
    """The batch-norm-folded copy for the path passes when its logits on ``x`` match."""
    return fold_if_same(model, x)


def _flagged(index: pd.DataFrame, cfg: IGConfig) -> int:
    """Rows that stopped incomplete (``ig_capped``; maps stored before it had the column:
    completeness error above ``cfg.tolerance``)."""
    if "ig_capped" in index:
        return int(index["ig_capped"].astype(bool).sum())
    return int((index[COLUMNS[0]] > cfg.tolerance).sum())


def _summary(index: pd.DataFrame, cfg: IGConfig) -> str:
    """Path points per image and how many images stopped at the cap (maps stored before
    ``ig_steps`` existed: the settings' count)."""
    if "ig_steps" not in index or not len(index):
        return f"{cfg.n_steps} path points per image"
    steps = index["ig_steps"].astype(int)
    capped = int(index["ig_capped"].astype(bool).sum())
    rule = (f"auto to {cfg.tolerance:.2%} completeness" if cfg.adaptive
            else f"{cfg.n_steps} {cfg.method} nodes")  # fmt: skip
    return (f"{rule}: path points per image median {int(steps.median())}, "
            f"max {steps.max()}, {steps.mean():.1f} on average; {capped} of {len(index)} "
            f"image(s) {'capped' if cfg.adaptive else 'incomplete'}")  # fmt: skip


def _flag_text(n: int, cfg: IGConfig) -> str:
    if cfg.adaptive:
        return (f"{n} image(s) reached the IG cap of {cfg.cap} path points before their "
                f"completeness error was within {cfg.tolerance:.0%} (ig_capped in index.csv); "
                "raise --ig-cap")  # fmt: skip
    return (f"{n} image(s) have an IG completeness error above {cfg.tolerance:.0%} at "
            f"{cfg.n_steps} path points (ig_capped in index.csv); use --ig-n-steps "
            "auto")  # fmt: skip


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
    flag_text=_flag_text,
    summary=_summary,
    column_types=COLUMN_TYPES,
)
