"""Attribute distributions per selection (all images, each cell) and accuracy per attribute
bin, with intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from saliency.analysis.attributes.gap import quantile_bins
from saliency.analysis.stats import bootstrap
from saliency.binomial import wilson


def selections(per: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """``(name, row mask)``: all images, then each cell (sorted)."""
    cells = per["cell"].astype(str)
    return [("all", np.ones(len(per), bool))] + [
        (c, (cells == c).to_numpy()) for c in sorted(set(cells))
    ]


def distributions(
    per: pd.DataFrame, attributes: list[str], n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per attribute and selection: n (images measured), the mean with its percentile
    bootstrap interval, the standard deviation and the quartiles."""
    out = []
    for a in attributes:
        for name, keep in selections(per):
            v = per.loc[keep, a].to_numpy(np.float64)
            v = v[np.isfinite(v)]
            mean, lo, hi = bootstrap(v[:, None], n_boot=n_boot, seed=seed)
            q = np.quantile(v, [0.25, 0.5, 0.75]) if len(v) else [np.nan] * 3
            out.append({"attribute": a, "selection": name, "n": len(v),
                        "mean": float(mean[0]), "mean_low": float(lo[0]),
                        "mean_high": float(hi[0]),
                        "sd": float(v.std(ddof=1)) if len(v) > 1 else np.nan,
                        "q25": q[0], "median": q[1], "q75": q[2]})  # fmt: skip
    return pd.DataFrame(out)


def accuracy_bins(
    per: pd.DataFrame, attributes: list[str], bins: int = 4, confidence: float = 0.95
) -> pd.DataFrame:
    """Per attribute: its quantile bins over all measured images (ties merge bins), and in
    each bin, per selection, the accuracy with its Wilson interval. Bin ``b`` holds the
    values in ``[low, high)`` (the last bin includes its ``high``)."""
    out = []
    correct = per["correct"].to_numpy(bool)
    sels = selections(per)
    for a in attributes:
        v = per[a].to_numpy(np.float64)
        ok = np.isfinite(v)
        if not ok.any():
            continue
        idx, edges = quantile_bins(v[ok], bins)
        where = np.full(len(v), -1)
        where[ok] = idx
        for b in range(len(edges) - 1):
            for name, keep in sels:
                sel = keep & (where == b)
                n, k = int(sel.sum()), int(correct[sel].sum())
                lo, hi = wilson(k, n, confidence)
                out.append({"attribute": a, "bin": b + 1, "low": edges[b], "high": edges[b + 1],
                            "selection": name, "n": n, "correct": k,
                            "accuracy": k / n if n else np.nan, "ci_low": lo,
                            "ci_high": hi})  # fmt: skip
    return pd.DataFrame(out)
