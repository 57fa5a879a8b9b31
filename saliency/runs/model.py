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
    preprocessing)."""
    from saliency.models.evaluate import evaluation_rows
    from saliency.models.loader import ImageSource

    train_rows, _ = evaluation_rows(ckpt, "train", run=run)
    train = ImageSource(train_rows["path"], pre, cache_bytes=0, workers=workers)
    return train.mean().permute(2, 0, 1).float().to(device)
