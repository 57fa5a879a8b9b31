"""Penalized logistic regression for many resamples at once, and cells' average marginal
effects.

The model: ``logit P(correct_i) = b0 + sum_k g_k D_ik + d . z_i``, with ``D_ik`` the
indicator of cell ``k`` (the first cell is the reference, ``g_0 = 0``) and ``z_i`` the
standardized attributes (none for the unadjusted model). Near-perfect cells separate (a cell
with every image right has an infinite unpenalized ``g``), so the likelihood is penalized:

- ``firth``: Firth's (1993) bias-reducing penalty, ``l(b) + log det I(b) / 2`` (Jeffreys'
  prior; Heinze and Schemper 2002), finite under separation and invariant to how the
  attributes are scaled. With cells alone (the saturated model) each cell's fitted
  probability is ``(k + 1/2) / (n + 1)``.
- ``ridge``: ``l(b) - ridge * |b without b0|^2 / 2`` on the standardized design.

Bootstrap resamples enter as frequency weights ``m [B, n]`` (how often each image was
drawn), so B fits share one design matrix and run as one batched Newton iteration
(Firth: the modified score ``X' (m (y - p) + h (1/2 - p))`` with the hat values ``h``;
steps capped at 5, as logistf does).

A cell's average marginal effect (AME) on P(correct): over all images ``i`` (weighted by
``m``), the probability with the cell's indicator set, ``P_i(k)``, minus the rest's,
``sum_{k' != k} w_k' P_i(k')`` with ``w_k' = n_k' / (n - n_k)`` (the rest's own mix of
cells). Without attributes and without a penalty it is exactly the cell's accuracy minus the
rest's.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from saliency.analysis.names import PENALTIES

MAX_STEP = 5.0


def design(cells: np.ndarray, n_cells: int, z: np.ndarray | None = None) -> np.ndarray:
    """``[n, 1 + (K - 1) + q]``: intercept, indicators of cells 1..K-1 (codes ``cells`` in
    0..K-1), then the attributes ``z [n, q]``."""
    n = len(cells)
    d = (cells[:, None] == np.arange(1, n_cells)[None, :]).astype(np.float64)
    parts = [np.ones((n, 1)), d] + ([] if z is None else [np.asarray(z, np.float64)])
    return np.concatenate(parts, axis=1)


def fit(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    penalty: str = "firth",
    ridge: float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ``[B, p]`` of ``y [n]`` (0/1) on ``x [n, p]`` (first column the
    intercept) under frequency weights ``weights [B, n]`` (default one fit, every weight 1),
    and whether each fit converged ``[B]`` (the coefficients of one that did not are NaN)."""
    if penalty not in PENALTIES:
        raise ValueError(f"unknown penalty {penalty!r}; valid: {', '.join(PENALTIES)}")
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    m = np.ones((1, len(y))) if weights is None else np.asarray(weights, np.float64)
    b, p = len(m), x.shape[1]
    beta = np.zeros((b, p))
    penal = np.eye(p) * ridge
    penal[0, 0] = 0.0  # the intercept is free
    done = np.zeros(b, bool)
    for _ in range(max_iter):
        prob = expit(beta @ x.T)  # [B, n]
        w = m * prob * (1 - prob)
        info = np.matmul((x[None] * w[..., None]).transpose(0, 2, 1), x)  # [B, p, p]
        resid = m * (y - prob)
        if penalty == "firth":
            inv = np.linalg.pinv(info, hermitian=True)
            hat = w * np.einsum("bnp,np->bn", np.matmul(x[None], inv), x)
            score = (resid + hat * (0.5 - prob)) @ x
        else:
            info = info + penal
            score = resid @ x - beta @ penal
            inv = np.linalg.pinv(info, hermitian=True)
        step = np.einsum("bij,bj->bi", inv, score)
        big = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(big, 1e-300))
        step[done] = 0.0
        beta += step
        done |= np.abs(step).max(axis=1) < tol
        if done.all():
            break
    beta[~done] = np.nan
    return beta, done


def cell_ames(
    beta: np.ndarray,
    x: np.ndarray,
    cells: np.ndarray,
    n_cells: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Each cell's AME on P(correct) ``[B, K]`` for coefficients ``beta [B, p]`` of the
    design ``x`` (:func:`design`), averaged over the images under ``weights [B, n]``."""
    m = np.ones((1, len(cells))) if weights is None else np.asarray(weights, np.float64)
    k = n_cells
    rest = x[:, k:]  # the attributes' columns (none for the unadjusted model)
    base = beta[:, :1] + beta[:, k:] @ rest.T  # [B, n]: b0 + d . z_i
    shift = np.concatenate([np.zeros((len(beta), 1)), beta[:, 1:k]], axis=1)  # [B, K]
    prob = expit(base[:, :, None] + shift[:, None, :])  # [B, n, K]: P_i(k)
    mean = np.einsum("bn,bnk->bk", m, prob) / m.sum(axis=1, keepdims=True)  # [B, K]
    counts = np.bincount(cells, minlength=k).astype(np.float64)
    out = np.empty_like(mean)
    for c in range(k):
        w = counts.copy()
        w[c] = 0.0
        out[:, c] = mean[:, c] - mean @ (w / w.sum())
    return out
