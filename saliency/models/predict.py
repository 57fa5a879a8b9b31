"""Forward passes through a checkpoint's model under its own preprocessing."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from saliency.models import outputs
from saliency.models.camnet import CamNet
from saliency.models.loader import ImageSource
from saliency.models.preprocess import Preprocessing, model_input
from saliency.runtime import full_float32


@torch.inference_mode()
@full_float32
def predict_logits(
    model: CamNet,
    pre: Preprocessing,
    paths: Sequence[str | os.PathLike],
    batch_size: int = 128,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Logits ``float32 [N, n_outputs]`` for image files, in order (streamed from disk)."""
    device = next(model.parameters()).device
    source = ImageSource(paths, pre, cache_bytes=0, workers=workers)
    out = np.empty((len(source), model.n_outputs), np.float32)
    for images, rows in source.batches(np.arange(len(source)), batch_size):
        x = model_input(images.to(device), pre)
        out[rows.numpy()] = model(x).float().cpu().numpy()
        if progress is not None:
            progress(len(rows))
    return out


def predictions_frame(df: pd.DataFrame, logits: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """path, label, group, split, ``prob_<class>``, pred, correct and the raw logit(s)."""
    z = torch.from_numpy(logits)
    probs = outputs.probabilities(z).numpy()
    pred_idx = outputs.predicted(z).numpy()
    out = df[["path", "label", "group", "split"]].reset_index(drop=True).copy()
    for k, c in enumerate(classes):
        out[f"prob_{c}"] = probs[:, k]
    out["pred"] = np.asarray(classes, dtype=object)[pred_idx]
    out["correct"] = out["pred"] == out["label"]
    if logits.shape[1] == 1:
        out["logit"] = logits[:, 0]
    else:
        for k, c in enumerate(classes):
            out[f"logit_{c}"] = logits[:, k]
    return out
