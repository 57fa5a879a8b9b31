"""The inputs an ablation classifies: each image and its region variants, where they are made.

Two places give the same bytes (``tests/test_fill_batch.py``):

- ``workers``: DataLoader workers decode, fill with OpenCV (:func:`ablated`, the reference)
  and resize to the model's input; the main process only classifies. Best where the model
  runs on the same CPU cores.
- ``device``: workers only decode; the fills run batched in torch on the model's device
  (:mod:`saliency.perturb.fill_torch`). Best on a GPU, where OpenCV in the workers would
  starve it. Images whose stored size differs from the model's input fall back to the
  workers' path, one by one: the contract's area resize stays OpenCV's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from saliency.data.imageio import ImageReadError, read_label_map, read_rgb
from saliency.data.regions import REGION_CODES
from saliency.imsize import InputSize, hw
from saliency.models.preprocess import resize_rgb
from saliency.perturb.fill import FEATURES, blend, fill_mask, fill_source
from saliency.perturb.fill_torch import ablated_batch
from saliency.perturb.names import FILL_PLACES


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
    """Row ``i`` -> ``(i, item, why)``: ``item`` is ``("stack", uint8 [R + 1, h, w, 3],
    areas int64 [R])`` when the worker filled and resized to the input's ``(h, w)``
    (original first), ``("raw", image uint8 [h, w, 3], labels uint8 [h, w], noise uint8
    [h, w, 3] or None)`` when the device will, or None with the reason the row cannot be used."""

    def __init__(self, paths, masks, cfg, size: InputSize, place: str = "workers"):
        self.paths, self.masks, self.cfg, self.size = list(paths), list(masks), cfg, size
        self.place = place

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        cfg = self.cfg
        if self.masks[i] == Path():
            return i, None, "no region mask"
        try:
            image = read_rgb(self.paths[i])
            labels = read_label_map(self.masks[i])
            if labels.shape != image.shape[:2]:
                raise ValueError(f"mask {labels.shape} and image {image.shape[:2]} differ")
        except (ImageReadError, ValueError) as exc:
            return i, None, str(exc)
        seed = cfg.seed + i
        if self.place == "device" and image.shape[:2] == hw(self.size):
            noise = None
            if cfg.fill == "noise":
                noise = torch.from_numpy(fill_source(image, "noise", seed))
            return i, ("raw", torch.from_numpy(image), torch.from_numpy(labels), noise), ""
        variants, areas = ablated(image, labels, cfg.regions, cfg.fill, cfg.mode, seed, cfg.protect)
        stack = np.stack([resize_rgb(v, self.size) for v in (image, *variants)])
        return i, ("stack", torch.from_numpy(stack), torch.tensor(areas)), ""


@dataclass
class LoaderBatch:
    """One loader batch, stacked in the worker so the pinning thread can pin it whole (a
    pageable copy to a GPU waits for all queued work; a pinned one does not).

    ``raw_*``: rows the device fills (images ``uint8 [b, h, w, 3]``, labels ``uint8 [b, h,
    S]``, noise like images or None); ``done_*``: rows the worker filled (stack ``uint8
    [d * (R + 1), h, w, 3]``, areas ``int64 [d, R]``); ``skipped``: ``(row, reason)``."""

    skipped: list[tuple[int, str]]
    raw_idx: list[int]
    raw_images: torch.Tensor | None = None
    raw_labels: torch.Tensor | None = None
    raw_noise: torch.Tensor | None = None
    done_idx: list[int] = field(default_factory=list)
    done_stack: torch.Tensor | None = None
    done_areas: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.skipped) + len(self.raw_idx) + len(self.done_idx)

    def pin_memory(self) -> LoaderBatch:
        for name in ("raw_images", "raw_labels", "raw_noise", "done_stack", "done_areas"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.pin_memory())
        return self


def collate(items) -> LoaderBatch:
    """``Variants`` items -> one :class:`LoaderBatch` (runs in the loader's workers)."""
    raw = [(i, it) for i, it, _ in items if it is not None and it[0] == "raw"]
    done = [(i, it) for i, it, _ in items if it is not None and it[0] == "stack"]
    batch = LoaderBatch([(i, why) for i, it, why in items if it is None], [i for i, _ in raw])
    if raw:
        batch.raw_images = torch.stack([it[1] for _, it in raw])
        batch.raw_labels = torch.stack([it[2] for _, it in raw])
        if raw[0][1][3] is not None:
            batch.raw_noise = torch.stack([it[3] for _, it in raw])
    if done:
        batch.done_idx = [i for i, _ in done]
        batch.done_stack = torch.cat([it[1] for _, it in done])
        batch.done_areas = torch.stack([it[2] for _, it in done])
    return batch


def batch_inputs(
    batch: LoaderBatch, cfg, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A loader batch's usable rows -> row indices ``int64 [B]`` (CPU), model-size images
    ``uint8 [B * (R + 1), h, w, 3]`` on ``device`` (per image: original, then each region),
    and region areas ``int64 [B, R]`` (px, at the stored size) on ``device``. Nothing here
    waits for the device: copies are asynchronous from pinned memory."""
    idx, stacks, areas = [], [], []
    if batch.raw_idx:
        images = batch.raw_images.to(device, non_blocking=True)
        labels = batch.raw_labels.to(device, non_blocking=True)
        noise = None
        if cfg.fill == "noise":
            noise = batch.raw_noise.to(device, non_blocking=True)
        variants, area = ablated_batch(
            images, labels, cfg.regions, cfg.fill, cfg.mode, cfg.protect, noise
        )
        stacks.append(torch.cat([images.unsqueeze(1), variants], 1).flatten(0, 1))
        idx += batch.raw_idx
        areas.append(area)
    if batch.done_idx:
        stacks.append(batch.done_stack.to(device, non_blocking=True))
        idx += batch.done_idx
        areas.append(batch.done_areas.to(device, non_blocking=True))
    return torch.tensor(idx, dtype=torch.int64), torch.cat(stacks), torch.cat(areas)
