"""Explicit per-image normalization of raw maps (always recorded with the result).

- ``minmax``: ``(m - min) / (max - min)`` in [0, 1] (what pytorch-grad-cam does after ReLU)
- ``max``: ``m / max|m|`` in [-1, 1], keeps the sign (default)
- ``sum``: ``m / sum|m|``, each map's absolute mass is 1
- ``none``: raw units
"""

from __future__ import annotations

import numpy as np

from saliency.analysis.names import NORMS

EPS = 1e-12


def normalize_maps(maps: np.ndarray, norm: str) -> np.ndarray:
    """Normalize each map of ``[B, H, W]`` (float64 result); all-zero maps stay zero."""
    m = np.asarray(maps, dtype=np.float64)
    flat = m.reshape(len(m), -1)
    if norm == "none":
        return m.copy()
    if norm == "max":
        scale = np.abs(flat).max(axis=1)
        return m / np.maximum(scale, EPS)[:, None, None]
    if norm == "sum":
        scale = np.abs(flat).sum(axis=1)
        return m / np.maximum(scale, EPS)[:, None, None]
    if norm == "minmax":
        lo, hi = flat.min(axis=1), flat.max(axis=1)
        return (m - lo[:, None, None]) / np.maximum(hi - lo, EPS)[:, None, None]
    raise ValueError(f"unknown normalization {norm!r}; valid: {', '.join(NORMS)}")
