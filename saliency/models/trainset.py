"""Check a manifest for training and resolve its splits, before any training starts; draw
an epoch's order; read a run's stored recipe back."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from saliency.data.manifest import Manifest, read_manifest
from saliency.data.splits import stratified_split
from saliency.models.checkpoint import read_checkpoint
from saliency.models.recipe import Augmentation, TrainConfig
from saliency.rundir import last_checkpoint


@dataclass
class TrainData:
    manifest: Manifest
    split: np.ndarray  # "train" / "val" / "test" / "" per row
    seeded_split: bool  # True when the split was drawn here (no split column)

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


def prepare(path: str | os.PathLike, classes: list[str] | None = None, seed: int = 0) -> TrainData:
    """Read the manifest and fail with one clear message on what would break training.

    Two classes are required; every train and val image must exist; the validation split
    must not be empty. Without a split column, a seeded 70/15/15 split stratified by cell
    is drawn.
    """
    m = read_manifest(path, classes)
    if len(m.classes) != 2:
        raise ValueError(
            f"training needs exactly two classes; {path} has {len(m.classes)}: {m.classes} "
            "(fix the labels, or check the manifest with `saliency data check`)"
        )
    seeded = bool((m.df["split"] == "").all())
    split = (stratified_split(m.df, seed=seed) if seeded else m.df["split"]).to_numpy()
    for name in ("train", "val"):
        if not (split == name).any():
            raise ValueError(
                f"no {'validation' if name == 'val' else 'training'} images: the split column "
                f"of {path} has no {name!r} rows (re-import with --val-fraction, or leave the "
                "split column empty for a seeded split)"
            )
    used = np.flatnonzero((split == "train") | (split == "val"))
    missing = [m.df.at[i, "path"] for i in used if not m.abspath(m.df.at[i, "path"]).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} train/val image(s) missing, e.g. {missing[0]}; run "
            f"`saliency data check {path}` for the full list"
        )
    return TrainData(m, split, seeded)


def epoch_order(
    y: torch.Tensor, n_classes: int, balanced: bool, gen: torch.Generator
) -> np.ndarray:
    """Indices ``[n]`` into the ``n`` training labels ``y`` for one epoch: a permutation, or
    class-balanced draws with replacement; from ``gen`` alone, so every rank draws the same."""
    n = int(y.numel())
    if balanced:
        weight = 1.0 / torch.bincount(y, minlength=n_classes).clamp(min=1)[y]
        return torch.multinomial(weight.double(), n, replacement=True, generator=gen).numpy()
    return torch.randperm(n, generator=gen).numpy()


def config_from_checkpoint(run: str | Path, **overrides) -> TrainConfig:
    """The training config stored in a run's last.pt (for ``--resume``)."""
    path = last_checkpoint(run)
    stored = read_checkpoint(path).train_config
    if stored is None:
        raise ValueError(f"{path} holds no training config: its model was not trained here")
    d = dict(stored)
    d["augmentation"] = Augmentation(**d["augmentation"])
    return replace(TrainConfig(**d), **overrides)
