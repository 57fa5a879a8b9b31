"""How alike two sets of maps are, image by image (the randomization checks' measures).

Adebayo et al. (NeurIPS 2018) compare a trained model's maps with a randomized model's by
Spearman's rank correlation of the signed maps and of their absolute values, and by SSIM.
Here: ``spearman`` ranks all pixels of each map (ties share their average rank); SSIM is
scikit-image's (Wang et al. 2004; 7x7 window) on each map scaled to [0, 1] by its own minimum
and maximum (a constant map scales to 0). A method passes the cascading check when, with
every block re-initialized, the mean of each measure is below the threshold: its maps
depend on the weights.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MEASURES = ("spearman", "spearman_abs", "ssim")


def spearman_maps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho between ``a[i]`` and ``b[i]`` over pixels, ``[N, H, W]`` -> ``[N]``;
    NaN where a map is constant."""
    from scipy.stats import rankdata

    ra = rankdata(a.reshape(len(a), -1), axis=1)
    rb = rankdata(b.reshape(len(b), -1), axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    den = np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(1) / np.where(den > 0, den, 1), np.nan)


def _unit(m: np.ndarray) -> np.ndarray:
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def ssim_maps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM of each pair of maps scaled to [0, 1] (module docstring), ``[N]``."""
    from skimage.metrics import structural_similarity

    return np.array([
        structural_similarity(_unit(x.astype(np.float64)), _unit(y.astype(np.float64)),
                              data_range=1.0)
        for x, y in zip(a, b, strict=True)
    ])  # fmt: skip


def similarities(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """All three measures (:data:`MEASURES`) per image, for maps ``[N, H, W]``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"maps {a.shape} and {b.shape} differ in shape")
    return {
        "spearman": spearman_maps(a, b),
        "spearman_abs": spearman_maps(np.abs(a), np.abs(b)),
        "ssim": ssim_maps(a, b),
    }


def randomization_verdicts(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """One row per method from the cascade table (``method``, ``step``, ``block``, and per
    measure its mean ``<m>`` with ``<m>_low``/``<m>_high``): the last step's means and
    ``passed`` when every measure's mean there is below ``threshold``."""
    rows = []
    for method, t in table.groupby("method", sort=False):
        last = t.loc[t["step"].idxmax()]
        means = {m: float(last[m]) for m in MEASURES}
        passed = all(np.isfinite(v) and v < threshold for v in means.values())
        worst = max(MEASURES, key=lambda m: means[m] if np.isfinite(means[m]) else np.inf)
        rows.append(
            {
                "method": method,
                "blocks": int(last["step"]),
                **means,
                "threshold": threshold,
                "passed": passed,
                "reason": "" if passed else f"{worst} {means[worst]:.2f} >= {threshold}",
            }
        )
    return pd.DataFrame(rows)
