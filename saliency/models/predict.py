"""Forward passes through a checkpoint's model under its own preprocessing."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from saliency.models import outputs
from saliency.models.camnet import CamNet
from saliency.models.loader import ImageSource
from saliency.models.preprocess import Preprocessing, model_input
from saliency.runtime import full_float32_context


def predict_logits(
    model: CamNet,
    pre: Preprocessing,
    paths: Sequence[str | os.PathLike],
    batch_size: int = 128,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Logits ``float32 [N, n_outputs]`` for image files, in order (streamed from disk;
    inference mode and full float32, as :func:`logits_stream`)."""
    out = np.empty((len(paths), model.n_outputs), np.float32)
    for rows, logits in logits_stream(model, pre, paths, np.arange(len(paths)), batch_size,
                                      workers):  # fmt: skip
        out[rows] = logits
        if progress is not None:
            progress(len(rows))
    return out


def logits_stream(
    model: CamNet,
    pre: Preprocessing,
    paths: Sequence[str | os.PathLike],
    rows: np.ndarray,
    batch_size: int = 128,
    workers: int = 2,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(rows [B], logits float32 [B, n_outputs])`` batch by batch for the images
    ``paths[rows]`` (``rows`` increasing: a rank's shard), under inference mode and full
    float32 (:func:`saliency.runtime.full_float32`)."""
    device = next(model.parameters()).device
    source = ImageSource(paths, pre, cache_bytes=0, workers=workers)
    with torch.inference_mode(), full_float32_context():
        for images, idx in source.batches(np.asarray(rows), batch_size):
            x = model_input(images.to(device), pre)
            yield idx.numpy(), model(x).float().cpu().numpy()


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
