"""Which rows a run is evaluated on, under the checkpoint's class order and split.

A run's images (its analysis set) are the first manifest it was given: training's or adopt's
``--manifest`` (both in the checkpoint's data record) or, for an adopted run that named none,
the first ``evaluate --manifest`` (in ``RUN/images.json``: the checkpoint is never rewritten,
its hash keys resumable work). :func:`run_images` is where every stage finds them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from saliency.atomic import atomic_write_json
from saliency.data.manifest import SPLITS, read_manifest
from saliency.data.splits import stratified_split
from saliency.models.checkpoint import DataRecord, file_sha256
from saliency.rundir import images_record

if TYPE_CHECKING:
    from saliency.models.checkpoint import Checkpoint

UNSPLIT = "test"  # the split of rows without one, in any manifest the model was not trained on


def run_images(ckpt: Checkpoint, run: str | os.PathLike | None = None) -> DataRecord:
    """The run's images: the checkpoint's data record when it names a manifest (training's,
    adopt's), else the one ``RUN/images.json`` records (``run`` is the run folder), else the
    checkpoint's record, whose ``manifest`` is None (the run names no images).

    Returns a :class:`DataRecord`; raises ValueError when the recorded manifest is gone or
    changed since it was recorded (its sha256)."""
    path = images_record(run) if run is not None else None
    if ckpt.data.manifest is not None or path is None or not path.is_file():
        return ckpt.data
    rec = json.loads(path.read_text())
    manifest = Path(rec["manifest"])
    again = f"restore it, or remove {path} and run `saliency evaluate --manifest M` again"
    if not manifest.is_file():
        raise ValueError(f"{manifest}, the run's images ({path}), is missing: {again}")
    if file_sha256(manifest) != rec["sha256"]:
        raise ValueError(f"{manifest} changed since it became the run's images ({path}): {again}")
    return DataRecord(str(manifest), rec["sha256"], unsplit=rec.get("unsplit", UNSPLIT))


def record_images(run: str | os.PathLike, manifest: str | os.PathLike, by: str) -> Path:
    """Record ``manifest`` as the run's images in ``RUN/images.json`` (its absolute path, its
    sha256, the split of its rows without one, and ``by``, the command that chose it).
    Returns the file written."""
    manifest = Path(manifest).resolve()
    rec = {"manifest": str(manifest), "sha256": file_sha256(manifest), "unsplit": UNSPLIT,
           "set_by": by}  # fmt: skip
    return atomic_write_json(images_record(run), rec)


def same_manifest(a: str | os.PathLike, b: str | os.PathLike | None) -> bool:
    """``a`` and ``b`` are the same manifest file (after resolving links and ``..``)."""
    return b is not None and Path(a).resolve() == Path(b).resolve()


def evaluation_rows(
    ckpt: Checkpoint,
    split: str,
    manifest: str | os.PathLike | None = None,
    run: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, Path]:
    """Rows of ``split`` (or ``all``) of the run's images (:func:`run_images`; pass the run
    folder ``run``) or of another ``manifest``.

    When training drew a seeded split (no split column), the same split is drawn again
    from the same manifest (its hash is checked) so ``test`` means the same images. Rows
    without a split are ``test`` rows in an adopted run's images and in any manifest other
    than the run's own (a data set the model never trained on is all test).
    Returns the rows (with absolute ``path``) and the manifest path.
    """
    if split not in (*SPLITS, "all"):
        raise ValueError(f"unknown split {split!r}; valid: {', '.join((*SPLITS, 'all'))}")
    data = run_images(ckpt, run)
    if manifest is None and data.manifest is None:
        raise ValueError(
            "this adopted run names no images: pass --manifest M to evaluate (M becomes the "
            "run's images), or adopt again with --manifest"
        )
    path = Path(manifest or data.manifest)
    m = read_manifest(path, list(ckpt.classes))
    df = m.df.copy()
    own = same_manifest(path, data.manifest)
    unsplit = data.unsplit if own else UNSPLIT
    if unsplit:  # a model never trained on rows without a split
        df.loc[df["split"] == "", "split"] = unsplit
    if (df["split"] == "").all() and own and ckpt.seed is not None:
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
    ckpt: Checkpoint,
    split: str,
    manifest: str | os.PathLike | None = None,
    run: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, Path]:
    """The rows of ``split`` of the run's images (``run``: the run folder); with ``manifest``
    their ``mask`` column comes from it, matched by image path (a run that names no images
    takes its rows from it). Returns the rows (absolute paths; masks absolute when taken
    from ``manifest``) and the manifest the images come from."""
    from saliency.data.masks import with_masks

    if manifest is not None and run_images(ckpt, run).manifest is None:
        rows, path = evaluation_rows(ckpt, split, manifest, run)
    else:
        rows, path = evaluation_rows(ckpt, split, run=run)
    return with_masks(rows, manifest), path


def count_parameters(model) -> int:
    return int(sum(np.prod(p.shape) for p in model.parameters()))
