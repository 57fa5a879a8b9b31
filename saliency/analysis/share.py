"""How much of a map's positive attribution falls in each facial region.

For a map ``m [H, W]`` and an exclusive region label map: share of positive mass
``sum(m+ in R) / sum(m+)``, area share ``|R| / (H W)``, and enrichment = share / area.
Enrichment 1 means the region gets attribution in proportion to its size.
"""

from __future__ import annotations

import numpy as np

from saliency.data.regions import REGION_CODES


def region_shares(m: np.ndarray, labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Share of positive mass, area share and enrichment of each of the six regions."""
    if m.shape != labels.shape:
        raise ValueError(f"map {m.shape} and region labels {labels.shape} differ in shape")
    pos = np.clip(m, 0, None)
    total = float(pos.sum())
    out = {}
    for name, code in REGION_CODES.items():
        inside = labels == code
        area = float(inside.mean())
        share = float(pos[inside].sum()) / total if total > 0 else float("nan")
        out[name] = {
            "share": share,
            "area": area,
            "enrichment": share / area if area > 0 else float("nan"),
        }
    return out
