"""How much of a map's positive attribution falls in each facial region.

For a map ``m [H, W]`` and an exclusive region label map: share of positive mass
``sum(m+ in R) / sum(m+)``, area share ``|R| / (H W)``, and enrichment = share / area.
Enrichment 1 means the region gets attribution in proportion to its size. For an average
map over N faces, each pixel belongs to a region with the frequency it has in their masks.
"""

from __future__ import annotations

import numpy as np
import torch

from saliency.data.regions import REGION_CODES, REGIONS


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


def batch_region_mass(
    maps: torch.Tensor, labels: torch.Tensor, regions: tuple[str, ...] = REGIONS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positive attribution mass and area of each region, for a batch.

    ``maps [B, H, W]`` (any units), ``labels [B, H, W]`` region codes. Returns ``mass
    [B, R]`` (sum of ``max(m, 0)`` inside each region, the map's units), ``area [B, R]``
    (fraction of the image's pixels) and ``total [B]`` (positive mass of the whole map),
    in float64, regions in the order given."""
    pos = maps.double().clamp_min(0).flatten(1)
    lab = labels.flatten(1).long()  # codes 0..255: one scatter per image, no [B, R, HW] mask
    mass = torch.zeros(len(lab), 256, dtype=torch.float64, device=lab.device)
    mass.scatter_add_(1, lab, pos)
    count = torch.zeros_like(mass).scatter_add_(1, lab, torch.ones_like(pos))
    codes = torch.tensor([REGION_CODES[r] for r in regions], device=lab.device)
    return mass[:, codes], count[:, codes] / lab.shape[1], pos.sum(1)


def rank_accuracy(maps: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Relevance rank accuracy (Arras et al. 2022, CLEVR-XAI): with ``K = |truth|`` pixels
    in an image's ground-truth mask, the fraction of its ``K`` highest-attribution pixels
    that lie inside the mask. ``maps [B, H, W]``, ``truth bool [B, H, W]`` -> ``[B]`` in
    [0, 1]; NaN where the mask is empty. Chance level is the mask's area fraction."""
    flat = maps.flatten(1)
    gt = truth.flatten(1)
    k = gt.sum(1)
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    hits = torch.cumsum(gt.gather(1, order).double(), dim=1)  # [B, HW]
    at_k = hits.gather(1, (k - 1).clamp_min(0)[:, None])[:, 0]
    return torch.where(k > 0, at_k / k.clamp_min(1), torch.full_like(at_k, float("nan")))
