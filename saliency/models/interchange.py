"""The sidecar between ``saliency export`` and ``saliency adopt``, and their sample batch.

``export`` writes ``FILE.preprocessing.json`` beside an exported model (``FILE``): the
preprocessing, the class order and what the graph takes and returns. ``adopt`` reads it back
(:func:`beside`) when it adopts ``FILE``, so an exported run comes back without restating
its preprocessing. Both run the model on :func:`sample_batch`: up to :data:`SAMPLE` images,
or seeded noise when there are none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from saliency.atomic import atomic_write_json
from saliency.models.preprocess import Preprocessing, model_input

SAMPLE = 8  # images in the batch that finds the last block and checks conversions
PREPROCESSING_SUFFIX = ".preprocessing.json"  # written beside an export (saliency export)
SIDECAR_FORMAT = "saliency-preprocessing/1"
INPUT = "float32 [N, 3, h, w]: RGB in [0, 1], minus mean, over std, per channel"


def sidecar_path(model_file: str | os.PathLike) -> Path:
    """``FILE.preprocessing.json`` for the model file ``FILE``."""
    return Path(str(model_file) + PREPROCESSING_SUFFIX)


def write_sidecar(
    model_file: str | os.PathLike,
    pre: Preprocessing,
    classes: list[str],
    n_outputs: int,
    check: dict,
) -> Path:
    """Write the sidecar of an exported model that returns ``n_outputs`` logits per image;
    ``check`` records how the export was checked. Returns its path."""
    info = {
        "format": SIDECAR_FORMAT,
        "model": Path(model_file).name,
        "preprocessing": pre.to_dict(),
        "classes": classes,
        "input": INPUT,
        "output": "logits",
        "n_outputs": n_outputs,
        "convention": "one logit: the log-odds of classes[1]"
        if n_outputs == 1
        else "one logit per class, in the order of classes",
        "check": check,
    }
    path = sidecar_path(model_file)
    atomic_write_json(path, info)
    return path


def beside(weights: str | os.PathLike | None) -> dict | None:
    """The sidecar ``saliency export`` wrote beside ``weights``, if any."""
    if not weights:
        return None
    path = sidecar_path(weights)
    return json.loads(path.read_text()) if path.is_file() else None


def sample_batch(paths: list, pre: Preprocessing) -> torch.Tensor:
    """Normalized inputs ``float32 [n, 3, h, w]``: the first :data:`SAMPLE` of ``paths``,
    else (no paths) :data:`SAMPLE` seeded noise images."""
    if paths:
        from saliency.models.loader import ImageSource

        paths = list(paths)[:SAMPLE]
        images, _ = next(ImageSource(paths, pre, workers=0).batches(np.arange(len(paths)), SAMPLE))
        return model_input(images, pre)
    gen = torch.Generator().manual_seed(0)
    unit = torch.rand((SAMPLE, *pre.hw, 3), generator=gen)
    return model_input((unit * 255).to(torch.uint8), pre)
