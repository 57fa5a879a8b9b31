"""How much of a map's positive attribution falls in each facial region.

For a map ``m [H, W]`` and an exclusive region label map: share of positive mass
``sum(m+ in R) / sum(m+)``, area share ``|R| / (H W)``, and enrichment = share / area.
Enrichment 1 means the region gets attribution in proportion to its size. For an average
map over N faces, each pixel belongs to a region with the frequency it has in their masks.
"""

from __future__ import annotations

import numpy as np

from saliency.data.regions import REGION_CODES


def region_shares(m: np.ndarray, labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Share of positive mass, area share and enrichment of each of the six regions, for a
    map ``[H, W]`` and its face's labels ``[H, W]``, or for an average map ``[H, W]`` and
    the labels ``[N, H, W]`` of the faces it averages (regions as pixel frequencies)."""
    if m.shape != labels.shape[-2:]:
        raise ValueError(f"map {m.shape} and region labels {labels.shape} differ in shape")
    pos = np.clip(m, 0, None)
    total = float(pos.sum())
    labels = labels.reshape(-1, *m.shape)
    out = {}
    for name, code in REGION_CODES.items():
        inside = (labels == code).mean(axis=0)  # [H, W] in [0, 1]
        area = float(inside.mean())
        share = float((pos * inside).sum()) / total if total > 0 else float("nan")
        out[name] = {
            "share": share,
            "area": area,
            "enrichment": share / area if area > 0 else float("nan"),
        }
    return out
