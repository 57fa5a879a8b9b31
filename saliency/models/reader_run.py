"""A run's checkpoint for the hand-weighted region reader (:mod:`saliency.models.reader`),
so every command runs on a model whose maps and region effects are known exactly."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from saliency.models.checkpoint import Checkpoint, DataRecord, file_sha256
from saliency.models.preprocess import Preprocessing
from saliency.models.reader import ARCH, reader_state_dict
from saliency.models.zoo import ModelSpec


def reader_checkpoint(
    manifest: str | os.PathLike,
    template: torch.Tensor,
    pre: Preprocessing,
    weight: float,
    bias: float = 0.0,
    d0: float = 0.5,
    classes: tuple[str, str] = ("female", "male"),
) -> Checkpoint:
    """A checkpoint (for ``save_checkpoint``) of a region reader over ``manifest``'s
    images: one logit, the log-odds of ``classes[1]``; its split column decides the splits."""
    spec = ModelSpec(arch=ARCH, n_outputs=1, loss="bce", output_stride=1, dropout=0.0)
    return Checkpoint(
        spec=spec,
        classes=list(classes),
        pre=pre,
        state_dict=reader_state_dict(template, pre, weight, bias, d0),
        data=DataRecord(str(Path(manifest).resolve()), file_sha256(manifest)),
        epoch=0,
        train_config={"seed": 0, "hand_weighted": {"weight": weight, "bias": bias, "d0": d0}},
    )
