"""Which rows a run is evaluated on, under the checkpoint's class order and split."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from saliency.data.manifest import SPLITS, read_manifest
from saliency.data.splits import stratified_split
from saliency.models.checkpoint import file_sha256

if TYPE_CHECKING:
    from saliency.models.checkpoint import Checkpoint


def evaluation_rows(
    ckpt: Checkpoint, split: str, manifest: str | os.PathLike | None = None
) -> tuple[pd.DataFrame, Path]:
    """Rows of ``split`` (or ``all``) from the training manifest or another one.

    When training drew a seeded split (no split column), the same split is drawn again
    from the same manifest (its hash is checked) so ``test`` means the same images.
    Returns the rows (with absolute ``path``) and the manifest path.
    """
    if split not in (*SPLITS, "all"):
        raise ValueError(f"unknown split {split!r}; valid: {', '.join((*SPLITS, 'all'))}")
    data = ckpt.data
    if manifest is None and data.manifest is None:
        raise ValueError(
            "this adopted run names no images: pass --manifest M, or adopt again with --manifest"
        )
    path = Path(manifest or data.manifest)
    m = read_manifest(path, list(ckpt.classes))
    df = m.df.copy()
    if data.unsplit:  # an adopted model never trained on rows without a split
        df.loc[df["split"] == "", "split"] = data.unsplit
    trained_on = data.manifest is not None and path.resolve() == Path(data.manifest).resolve()
    if (df["split"] == "").all() and trained_on and ckpt.seed is not None:
        if file_sha256(path) != data.sha256:
            raise ValueError(f"{path} changed since training; its seeded split cannot be redrawn")
        df["split"] = stratified_split(df, seed=ckpt.seed)
    if split != "all":
        df = df[df["split"] == split]
        if df.empty:
            raise ValueError(f"{path} has no {split!r} rows; choose --split or --manifest")
    df["path"] = [str(m.abspath(p)) for p in df["path"]]
    return df.reset_index(drop=True), path


def run_rows(
    ckpt: Checkpoint, split: str, manifest: str | os.PathLike | None = None
) -> tuple[pd.DataFrame, Path]:
    """The run's rows of ``split``; with ``manifest`` their ``mask`` column comes from it,
    matched by image path (an adopted run that names no images takes its rows from it).
    Returns the rows (absolute paths; masks absolute when taken from ``manifest``) and the
    manifest the images come from."""
    from saliency.data.masks import with_masks

    if manifest is not None and ckpt.data.manifest is None:
        rows, path = evaluation_rows(ckpt, split, manifest)
    else:
        rows, path = evaluation_rows(ckpt, split)
    return with_masks(rows, manifest), path


def count_parameters(model) -> int:
    return int(sum(np.prod(p.shape) for p in model.parameters()))
