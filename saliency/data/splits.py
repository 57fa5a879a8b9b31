"""Seeded splits stratified by analysis cell (subgroup x class)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def stratified_split(
    df: pd.DataFrame, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> pd.Series:
    """``train``/``val``/``test`` per row; each (group, label) cell split by ``fractions``."""
    rng = np.random.default_rng(seed)
    out = pd.Series("", index=df.index, dtype=object)
    for _, cell in df.groupby(["group", "label"], sort=True):
        idx = rng.permutation(cell.index.to_numpy())
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        out[idx[:n_train]] = "train"
        out[idx[n_train : n_train + n_val]] = "val"
        out[idx[n_train + n_val :]] = "test"
    return out
