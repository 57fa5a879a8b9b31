"""Check a manifest for training and resolve its splits, before any training starts."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from saliency.data.manifest import Manifest, read_manifest
from saliency.data.splits import stratified_split


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
