"""The inputs an ablation classifies: each image and its region variants, where they are made.

Two places give the same bytes (``tests/test_fill_batch.py``):

- ``workers``: DataLoader workers decode, fill with OpenCV (:func:`ablated`, the reference)
  and resize to the model's input; the main process only classifies. Best where the model
  runs on the same CPU cores.
- ``device``: workers only decode; the fills run batched in torch on the model's device
  (:mod:`saliency.faces.fill_batch`). Best on a GPU, where OpenCV in the workers would
  starve it. Images whose stored size differs from the model's input fall back to the
  workers' path, one by one: the contract's area resize stays OpenCV's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from saliency.data.imageio import ImageReadError, read_label_map, read_rgb
from saliency.data.regions import REGION_CODES
from saliency.faces.fill import FEATURES, blend, fill_mask, fill_source
from saliency.faces.fill_batch import ablated_batch
from saliency.models.preprocess import resize_rgb

FILL_PLACES = ("auto", "device", "workers")


def fill_place(setting: str, device: torch.device) -> str:
    """``auto`` -> ``device`` on an accelerator, ``workers`` on the CPU."""
    if setting not in FILL_PLACES:
        raise ValueError(f"unknown fill place {setting!r}; valid: {', '.join(FILL_PLACES)}")
    if setting == "auto":
        return "workers" if device.type == "cpu" else "device"
    return setting


def ablated(
    image: np.ndarray,
    labels: np.ndarray,
    regions: list[str],
    fill: str,
    mode: str,
    seed: int = 0,
    protect: bool = True,
) -> tuple[list[np.ndarray], list[int]]:
    """The variants ``uint8 [H, W, 3]`` of one image, one per region, and each region's
    area in px (0: the variant is the image itself).

    ``delete`` blends the fill through the region's dilated, feathered mask (the reference
    recipe). With ``protect`` the blend weight is zero on the pixels of the other small
    features (eyes, brows, nose, mouth), so deleting the skin or the hair does not half-blur
    the brows inside them, nor deleting the eyes the brows above them (at 64 px the skin's
    feather, 3 sigma = 4 px, spans a whole brow). ``keep`` blends the fill through the
    complement, zeroed on the region's own pixels, so the region is kept exactly and the fill
    fades in around it."""
    source = fill_source(image, fill, seed)
    features = np.isin(labels, [REGION_CODES[f] for f in FEATURES])
    out, areas = [], []
    for region in regions:
        alpha = fill_mask(labels, region)
        inside = labels == REGION_CODES[region]
        if mode == "keep":
            alpha = np.where(inside, 0.0, 1.0 - alpha)
        elif protect:
            alpha = np.where(features & ~inside, 0.0, alpha)  # the other features' pixels
        out.append(blend(image, source, alpha))
        areas.append(int(inside.sum()))
    return out, areas


class Variants(Dataset):
    """Row ``i`` -> ``(i, item, why)``: ``item`` is ``("stack", uint8 [R + 1, S, S, 3],
    areas int64 [R])`` when the worker filled and resized (original first), ``("raw",
    image uint8 [S, S, 3], labels uint8 [S, S], noise uint8 [S, S, 3] or None)`` when the
    device will, or None with the reason the row cannot be used."""

    def __init__(self, paths, masks, cfg, size: int, place: str = "workers"):
        self.paths, self.masks, self.cfg, self.size = list(paths), list(masks), cfg, size
        self.place = place

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        cfg = self.cfg
        try:
            image = read_rgb(self.paths[i])
            labels = read_label_map(self.masks[i])
            if labels.shape != image.shape[:2]:
                raise ValueError(f"mask {labels.shape} and image {image.shape[:2]} differ")
        except (ImageReadError, ValueError) as exc:
            return i, None, str(exc)
        seed = cfg.seed + i
        if self.place == "device" and image.shape[:2] == (self.size, self.size):
            noise = None
            if cfg.fill == "noise":
                noise = torch.from_numpy(fill_source(image, "noise", seed))
            return i, ("raw", torch.from_numpy(image), torch.from_numpy(labels), noise), ""
        variants, areas = ablated(image, labels, cfg.regions, cfg.fill, cfg.mode, seed, cfg.protect)
        stack = np.stack([resize_rgb(v, self.size) for v in (image, *variants)])
        return i, ("stack", torch.from_numpy(stack), torch.tensor(areas)), ""


def collate(items):
    return items


def batch_inputs(
    good: list, cfg, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Usable items of one loader batch -> row indices ``[B]``, model-size images ``uint8
    [B * (R + 1), S, S, 3]`` on ``device`` (per image: original, then each region), and
    region areas ``int64 [B, R]`` (px, at the stored size)."""
    raw = [(i, it) for i, it, _ in good if it[0] == "raw"]
    done = [(i, it) for i, it, _ in good if it[0] == "stack"]
    idx, stacks, areas = [], [], []
    if raw:
        images = torch.stack([it[1] for _, it in raw]).to(device, non_blocking=True)
        labels = torch.stack([it[2] for _, it in raw]).to(device, non_blocking=True)
        noise = None
        if cfg.fill == "noise":
            noise = torch.stack([it[3] for _, it in raw]).to(device, non_blocking=True)
        variants, area = ablated_batch(
            images, labels, cfg.regions, cfg.fill, cfg.mode, cfg.protect, noise
        )
        stacks.append(torch.cat([images.unsqueeze(1), variants], 1).flatten(0, 1))
        idx += [i for i, _ in raw]
        areas.append(area.cpu())
    if done:
        stacks.append(torch.cat([it[1] for _, it in done]).to(device, non_blocking=True))
        idx += [i for i, _ in done]
        areas.append(torch.stack([it[2] for _, it in done]))
    return torch.tensor(idx), torch.cat(stacks), torch.cat(areas)
