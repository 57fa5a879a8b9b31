"""Region ablation: fill a region (``delete``) or everything but it (``keep``), re-classify.

Each image is read at its own (aligned) size, where its region masks live. Every region's
dilated, feathered fill mask (:mod:`saliency.faces.fill`) blends the fill into it; the
original and all variants then go through the run's own preprocessing (the resize and
normalization that evaluate used) and one batched forward pass, so all regions cost one pass
over the data. Decoding and filling happen in DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from saliency.data.cells import parse_group, present_groups
from saliency.data.imageio import ImageReadError, read_label_map, read_rgb
from saliency.data.manifest import relative_path
from saliency.data.regions import REGION_CODES, REGIONS
from saliency.faces.fill import FILLS, blend, fill_mask, fill_source
from saliency.models import outputs
from saliency.models.checkpoint import load_model
from saliency.models.evaluate import evaluation_rows
from saliency.models.precision import full_float32
from saliency.models.preprocess import model_input, resize_rgb
from saliency.rundir import best_checkpoint

MODES = ("delete", "keep")


@dataclass
class AblationConfig:
    split: str = "test"
    regions: list[str] = field(default_factory=lambda: list(REGIONS))
    fill: str = "blur"
    mode: str = "delete"
    batch_size: int = 32
    seed: int = 0  # noise fill
    limit: int | None = None
    groups: list[str] = field(default_factory=lambda: ["all"])  # subgroups, cells or all
    protect: bool = True  # delete: other features' pixels keep weight 0 (see ablated)

    def __post_init__(self) -> None:
        bad = [r for r in self.regions if r not in REGION_CODES]
        if bad or not self.regions:
            raise ValueError(f"unknown region(s) {bad}; valid: {', '.join(REGIONS)}, all")
        if self.fill not in FILLS:
            raise ValueError(f"unknown fill {self.fill!r}; valid: {', '.join(FILLS)}")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; valid: {', '.join(MODES)}")

    def to_dict(self) -> dict:
        return asdict(self)


FEATURES = ("eyes", "brows", "nose", "mouth")  # small regions a neighbour's fill may not touch


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
    out, areas = [], []
    for region in regions:
        alpha = fill_mask(labels, region)
        inside = labels == REGION_CODES[region]
        if mode == "keep":
            alpha = np.where(inside, 0.0, 1.0 - alpha)
        elif protect:
            others = [REGION_CODES[f] for f in FEATURES if f != region]
            alpha = np.where(np.isin(labels, others), 0.0, alpha)
        out.append(blend(image, source, alpha))
        areas.append(int(inside.sum()))
    return out, areas


def group_rows(rows: pd.DataFrame, groups: list[str], classes: list[str]) -> np.ndarray:
    """Rows in any of ``groups`` (subgroups, cells or ``all``); an unknown one raises
    ``ValueError`` listing the valid values."""
    present = present_groups(rows)
    keep = np.zeros(len(rows), dtype=bool)
    for g in groups:
        keep |= parse_group(g, present, classes).mask(rows)
    return keep


class _Variants(Dataset):
    """Row ``i`` -> ``uint8 [R + 1, S, S, 3]`` (original, then each region's variant at the
    model's input size), region areas, or the reason the row cannot be used."""

    def __init__(self, paths, masks, cfg: AblationConfig, size: int):
        self.paths, self.masks, self.cfg, self.size = list(paths), list(masks), cfg, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            image = read_rgb(self.paths[i])
            labels = read_label_map(self.masks[i])
            if labels.shape != image.shape[:2]:
                raise ValueError(f"mask {labels.shape} and image {image.shape[:2]} differ")
        except (ImageReadError, ValueError) as exc:
            return i, None, None, str(exc)
        variants, areas = ablated(
            image,
            labels,
            self.cfg.regions,
            self.cfg.fill,
            self.cfg.mode,
            self.cfg.seed + i,
            self.cfg.protect,
        )
        stack = np.stack([resize_rgb(v, self.size) for v in (image, *variants)])
        return i, torch.from_numpy(stack), torch.tensor(areas), ""


def _collate(items):
    return items


@torch.inference_mode()
@full_float32
def ablate_run(
    run: str | Path,
    cfg: AblationConfig,
    device: torch.device,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Per-image results (one row per image and region) and skipped rows, plus classes.

    Columns: path, label, group, region, region_area, score_before/after (the true class's
    score, logit units), prob_before/after (its probability), pred_before/after.
    """
    model, pre, classes, ckpt = load_model(best_checkpoint(Path(run)), device)
    rows, manifest = evaluation_rows(ckpt, cfg.split)
    rows = rows[group_rows(rows, cfg.groups, classes)].reset_index(drop=True)
    if cfg.limit:
        rows = rows.head(cfg.limit)
    if "mask" not in rows.columns:
        raise ValueError(
            f"{manifest} has no 'mask' column: run `saliency regions` on it and train on the "
            "manifest it writes (region masks must be in the classified images' coordinates)"
        )
    root = manifest.parent  # evaluation_rows gives absolute image paths; masks are relative
    masks = [p if Path(p).is_absolute() else root / p for p in rows["mask"]]
    loader = DataLoader(
        _Variants(rows["path"], masks, cfg, pre.size),
        batch_size=cfg.batch_size,
        num_workers=workers,
        collate_fn=_collate,
    )
    true = torch.tensor(rows["label"].map({c: k for k, c in enumerate(classes)}).to_numpy())
    n_reg = len(cfg.regions)
    frames, skipped = [], []
    for items in loader:
        good = [it for it in items if it[1] is not None]
        skipped += [(i, why) for i, stack, _, why in items if stack is None]
        if good:
            idx = torch.tensor([i for i, _, _, _ in good])
            batch = torch.cat([stack for _, stack, _, _ in good]).to(device)
            logits = model(model_input(batch, pre)).float().cpu()
            t = true[idx].view(-1, 1, 1).expand(-1, n_reg + 1, 1)  # the true class, per variant
            scores = (
                outputs.class_scores(logits).view(len(good), n_reg + 1, -1).gather(2, t)[..., 0]
            )
            probs = (
                outputs.probabilities(logits).view(len(good), n_reg + 1, -1).gather(2, t)[..., 0]
            )
            preds = outputs.predicted(logits).view(len(good), n_reg + 1)
            frames.append(pd.DataFrame({  # image-major: (image, region) -> one row
                "row": idx.repeat_interleave(n_reg).numpy(),
                "region": np.tile(cfg.regions, len(good)),
                "region_area": torch.stack([a for _, _, a, _ in good]).flatten().numpy(),
                "score_before": scores[:, :1].expand(-1, n_reg).flatten().numpy(),
                "score_after": scores[:, 1:].flatten().numpy(),
                "prob_before": probs[:, :1].expand(-1, n_reg).flatten().numpy(),
                "prob_after": probs[:, 1:].flatten().numpy(),
                "pred_before": preds[:, :1].expand(-1, n_reg).flatten().numpy(),
                "pred_after": preds[:, 1:].flatten().numpy(),
            }))  # fmt: skip
        if progress is not None:
            progress(len(items))
    cols = ["row", "region", "region_area", "score_before", "score_after", "prob_before",
            "prob_after", "pred_before", "pred_after"]  # fmt: skip
    per = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    meta = rows.reset_index(drop=True)[["path", "label", "group"]]
    meta["path"] = [relative_path(p, manifest.parent) for p in meta["path"]]  # as evaluate's
    per = meta.iloc[per["row"]].reset_index(drop=True).join(per.drop(columns="row"))
    for col in ("pred_before", "pred_after"):
        per[col] = np.asarray(classes, dtype=object)[per[col].to_numpy(int)]
    per["correct_before"] = per["pred_before"] == per["label"]
    per["correct_after"] = per["pred_after"] == per["label"]
    skip = pd.DataFrame(
        [
            (meta["path"].iloc[i], rows["label"].iloc[i], rows["group"].iloc[i], w)
            for i, w in skipped
        ],
        columns=["path", "label", "group", "reason"],
    )
    return per, skip, classes
