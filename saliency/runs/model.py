"""Readers of a run's model: the adoption record beside the checkpoint and the training
images' mean face (IG's mean baseline). Torch is imported when a reader needs it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from saliency.models.adopted import cam_refusal

if TYPE_CHECKING:
    import torch

    from saliency.models.checkpoint import Checkpoint
    from saliency.models.preprocess import Preprocessing

ADOPTION_RECORD = "model/adopted.json"  # written by saliency adopt, beside the checkpoint


def adoption_record(run: str | os.PathLike) -> dict | None:
    """The adoption record ``RUN/model/adopted.json`` (the checkpoint's ``adopted`` record,
    readable without torch); None for a trained run (or one without a model yet)."""
    path = Path(run) / ADOPTION_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def applicable(run: str | os.PathLike, methods: list[str]) -> tuple[list[str], str | None]:
    """``methods`` less cam when the run's model is an adopted one that is not CAM-ready
    (and the note that says so); unchanged while the run has no model yet."""
    why = cam_refusal(adoption_record(run)) if "cam" in methods else None
    if why is None:
        return list(methods), None
    return [m for m in methods if m != "cam"], f"cam left out: {why}"


MEAN_FACE_IMAGES = 10_000  # the mean face's sample of a larger training split


def mean_face(
    ckpt: Checkpoint,
    pre: Preprocessing,
    device: torch.device,
    workers: int = 2,
    run: str | os.PathLike | None = None,
) -> torch.Tensor:
    """The training images' mean ``float32 [3, H, W]`` in [0, 1] on ``device`` (IG's mean
    baseline): the ``train`` rows of the run's images (``run``: the run folder, where an
    adopted run's images may be recorded), read under ``pre`` (the checkpoint's
    preprocessing). A run without training rows (an adopted model, whose images are all
    test images) takes the mean of all its images: the baseline is a reference image, not
    a fitted parameter, so nothing is learned from the images it is then used on. Over
    :data:`MEAN_FACE_IMAGES` rows, a seeded sample of that many (a pixel's mean is then
    within about 0.003 of the full set's: millions of training faces are not read)."""
    from saliency.models.evaluate import evaluation_rows
    from saliency.models.loader import ImageSource

    try:
        train_rows, _ = evaluation_rows(ckpt, "train", run=run)
    except ValueError as exc:
        if "no 'train' rows" not in str(exc):
            raise
        train_rows, _ = evaluation_rows(ckpt, "all", run=run)
    if len(train_rows) > MEAN_FACE_IMAGES:
        train_rows = train_rows.sample(n=MEAN_FACE_IMAGES, random_state=0).sort_index()
    train = ImageSource(train_rows["path"], pre, cache_bytes=0, workers=workers)
    return train.mean().permute(2, 0, 1).float().to(device)
