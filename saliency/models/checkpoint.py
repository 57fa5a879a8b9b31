"""Checkpoints: weights plus everything later stages must not re-specify.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(..., weights_only=True)``:

    format          "saliency-checkpoint/1"
    model           ModelSpec fields (arch, n_outputs, loss, output_stride, se, dropout, ...)
    classes         class names in order (one logit: log-odds of classes[1])
    preprocessing   Preprocessing fields (size, mean, std, resize, interpolation)
    state_dict      model weights
    train_config    the resolved training options
    data            manifest path and sha256, image counts per split
    epoch, val_loss, val_accuracy
    resume          (last.pt only) optimizer, scheduler, early stopping, RNG states
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import torch

from saliency.atomic import atomic_write, tempfile_path
from saliency.models.camnet import CamNet
from saliency.models.preprocess import Preprocessing
from saliency.models.zoo import ModelSpec, build_model

FORMAT = "saliency-checkpoint/1"


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, ckpt: dict) -> Path:
    """Write a checkpoint dict atomically."""
    return atomic_write(path, lambda tmp: torch.save({"format": FORMAT, **ckpt}, tmp))


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint dict (weights_only) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; train first with `saliency train`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated copies, other formats, pickles with code in them
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ValueError(
            f"{path} cannot be read as a checkpoint ({why}); it may be truncated or corrupt: "
            "copy it again or retrain"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a saliency checkpoint")
    return ckpt


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[CamNet, Preprocessing, list[str], dict]:
    """Rebuild the model of a checkpoint in eval mode on ``device`` (a CamNet, or an
    AdoptedNet for a run made by ``saliency adopt``; both meet the model protocol).

    Returns (model, preprocessing, classes, the checkpoint dict).
    """
    ckpt = read_checkpoint(path)
    if ckpt["model"]["arch"] == "adopted":  # an external model (saliency adopt)
        from saliency.models.adopted.record import rebuild

        model = rebuild(ckpt, path).to(device).eval()
        return model, Preprocessing.from_dict(ckpt["preprocessing"]), list(ckpt["classes"]), ckpt
    spec = ModelSpec(**ckpt["model"])
    with torch.device("meta"):  # no random init to overwrite (0.09 s for a ResNet-18)
        model = build_model(spec)
    try:
        model.load_state_dict(ckpt["state_dict"], assign=True)
    except RuntimeError as exc:
        lines = [s.strip() for s in str(exc).splitlines() if s.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else "weights do not fit"
        raise ValueError(
            f"{path}: its weights do not fit its architecture ({spec.arch}): {detail[:160]}"
        ) from exc
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        model = build_model(spec)  # a buffer outside the state dict: build it for real
        model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    return model, Preprocessing.from_dict(ckpt["preprocessing"]), list(ckpt["classes"]), ckpt


def _snapshot(obj):
    """A copy of a checkpoint dict whose tensors no longer share memory with training."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _snapshot(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_snapshot(v) for v in obj)
    return obj


class CheckpointWriter:
    """Writes checkpoints on a background thread, so training does not wait for the disk.

    ``submit`` snapshots the tensors (a memory copy), waits for the previous write, then
    writes atomically in the background; ``close`` waits for the last one. A crash mid-write
    leaves the previous file intact (atomic rename).
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _run(self, jobs: list[tuple[Path, dict]]) -> None:
        try:
            for path, ckpt in jobs:
                with tempfile_path(path) as tmp:
                    torch.save({"format": FORMAT, **ckpt}, tmp)
        except BaseException as exc:  # surfaced on the next submit or close
            self._error = exc

    def submit(self, jobs: list[tuple[str | os.PathLike, dict]]) -> None:
        snap = [(Path(p), _snapshot(c)) for p, c in jobs]
        self.close()
        self._thread = threading.Thread(target=self._run, args=(snap,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err
