"""Checkpoints: weights plus everything later stages must not re-specify.

A :class:`Checkpoint` is written by training (``best.pt``, ``last.pt``) and by ``saliency
adopt``, and read back by :func:`read_checkpoint` and :func:`load_model`. On disk it is a
plain dict of tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(..., weights_only=True)``:

    format          "saliency-checkpoint/1"
    model           ModelSpec fields (arch, n_outputs, loss, output_stride, se, dropout, ...);
                    an adopted model: arch "adopted", n_outputs, output_stride None
    classes         class names in order (one logit: log-odds of classes[1])
    preprocessing   Preprocessing fields (size, mean, std, resize, interpolation, color)
    state_dict      model weights
    train_config    the resolved training options (a trained model only)
    data            manifest path and sha256, image counts per split
    epoch, val_loss, val_accuracy   (None for an adopted model)
    adopted         the adoption record (an adopted model only; models.adopted.record)
    resume          (last.pt only) optimizer, scheduler, early stopping, RNG states
    floor           True in validate's re-initialized copy (RUN/validation/floor/)

Adopted checkpoints written before the record became typed carry placeholders
(``train_config: {"seed": 0, "adopted": True}``, an invented ``model.loss``); they load,
and the placeholders are dropped.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from saliency.atomic import atomic_write, tempfile_path
from saliency.models.adopted import ARCH as ADOPTED
from saliency.models.adopted import cam_refusal
from saliency.models.camnet import CamNet
from saliency.models.preprocess import Preprocessing
from saliency.models.zoo import ModelSpec, build_model

FORMAT = "saliency-checkpoint/1"
KNOWN = ("format", "model", "classes", "preprocessing", "state_dict", "train_config", "data",
         "epoch", "val_loss", "val_accuracy", "adopted", "resume", "floor")  # fmt: skip


@dataclass
class DataRecord:
    """The images a model was trained on (or, for an adopted model, named with)."""

    manifest: str | None  # absolute path of the manifest; None: an adopted model named none
    sha256: str | None  # the manifest file's sha256 (hex)
    n_train: int = 0  # images trained on
    n_val: int = 0  # images validated on
    seeded_split: bool = False  # the manifest had no split: a seeded one was drawn
    unsplit: str | None = None  # adopted: the split of rows without one ("test")

    def to_dict(self) -> dict:
        d = {"manifest": self.manifest, "sha256": self.sha256, "n_train": self.n_train,
             "n_val": self.n_val, "seeded_split": self.seeded_split}  # fmt: skip
        if self.unsplit is not None:
            d["unsplit"] = self.unsplit
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DataRecord:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class Checkpoint:
    """A run's model: weights, classes, preprocessing, the data it names and where the
    model came from, either training (``spec``, ``train_config``) or adoption
    (``adoption``), never both. :meth:`to_dict` is the on-disk layout (module docstring)."""

    spec: ModelSpec | None  # a trained model's architecture; None for an adopted one
    classes: list[str]  # in output order
    pre: Preprocessing
    state_dict: dict[str, torch.Tensor]
    data: DataRecord
    epoch: int | None = None  # epochs trained when this was written
    val_loss: float | None = None
    val_accuracy: float | None = None
    train_config: dict | None = None  # TrainConfig.to_dict() (a trained model only)
    adoption: dict | None = None  # the adoption record (an adopted model only)
    resume: dict | None = None  # last.pt: optimizer, scheduler, RNG states, log
    floor: bool = False  # validate's re-initialized copy of the run's model
    extra: dict = field(default_factory=dict)  # keys of other writers, kept as they were

    def __post_init__(self) -> None:
        if (self.spec is None) == (self.adoption is None):
            raise ValueError("a checkpoint holds a trained model (spec) or an adopted one")

    @property
    def adopted(self) -> bool:
        """The model came from ``saliency adopt`` (no training recipe)."""
        return self.adoption is not None

    @property
    def arch(self) -> str:
        return self.spec.arch if self.spec is not None else ADOPTED

    @property
    def n_outputs(self) -> int:
        """Logits per image: 1 (log-odds of ``classes[1]``) or one per class."""
        return self.spec.n_outputs if self.spec is not None else int(self.adoption["n_outputs"])

    @property
    def output_stride(self) -> int | None:
        return self.spec.output_stride if self.spec is not None else None

    @property
    def seed(self) -> int | None:
        """The training seed (it draws a seeded split again); None for an adopted model."""
        seed = (self.train_config or {}).get("seed")
        return None if seed is None else int(seed)

    @property
    def explained(self) -> str:
        """What the maps explain: the logits, or for an adopted model what stands for them."""
        return self.adoption["explained"] if self.adoption is not None else "logits"

    @property
    def cam_refusal(self) -> str | None:
        """Why ``cam`` does not apply to this model; None when it does."""
        return cam_refusal(self.adoption)

    def to_dict(self) -> dict:
        """The on-disk dict (without ``format``, which :func:`save_checkpoint` adds)."""
        if self.spec is not None:
            model = self.spec.to_dict()
        else:
            model = {"arch": ADOPTED, "n_outputs": self.n_outputs, "output_stride": None}
        d = {"model": model, "classes": self.classes, "preprocessing": self.pre.to_dict(),
             "state_dict": self.state_dict}  # fmt: skip
        if self.train_config is not None:
            d["train_config"] = self.train_config
        d |= {"data": self.data.to_dict(), "epoch": self.epoch, "val_loss": self.val_loss,
              "val_accuracy": self.val_accuracy}  # fmt: skip
        if self.adoption is not None:
            d["adopted"] = self.adoption
        if self.resume is not None:
            d["resume"] = self.resume
        if self.floor:
            d["floor"] = True
        return d | self.extra

    @classmethod
    def from_dict(cls, d: dict) -> Checkpoint:
        """A checkpoint from its on-disk dict; an old adopted one loses its placeholders."""
        adoption = d.get("adopted")
        adopted = adoption is not None or d["model"]["arch"] == ADOPTED
        return cls(
            spec=None if adopted else ModelSpec(**d["model"]),
            classes=list(d["classes"]),
            pre=Preprocessing.from_dict(d["preprocessing"]),
            state_dict=d["state_dict"],
            data=DataRecord.from_dict(d["data"]),
            epoch=d.get("epoch"),
            val_loss=d.get("val_loss"),
            val_accuracy=d.get("val_accuracy"),
            train_config=None if adopted else d.get("train_config"),
            adoption=adoption,
            resume=d.get("resume"),
            floor=bool(d.get("floor", False)),
            extra={k: v for k, v in d.items() if k not in KNOWN},
        )


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _on_disk(ckpt: Checkpoint | dict) -> dict:
    """The dict :func:`save_checkpoint` writes (a dict is checked by reading it as one)."""
    if not isinstance(ckpt, Checkpoint):
        ckpt = Checkpoint.from_dict(ckpt)
    return {"format": FORMAT, **ckpt.to_dict()}


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint | dict) -> Path:
    """Write a checkpoint atomically (a :class:`Checkpoint`, or its on-disk dict)."""
    data = _on_disk(ckpt)
    return atomic_write(path, lambda tmp: torch.save(data, tmp))


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load a checkpoint (weights_only) and check its format."""
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
    try:
        return Checkpoint.from_dict(ckpt)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable saliency checkpoint ({exc})") from exc


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[CamNet, Preprocessing, list[str], Checkpoint]:
    """Rebuild the model of a checkpoint in eval mode on ``device`` (a CamNet, or an
    AdoptedNet for a run made by ``saliency adopt``; both meet the model protocol).

    Returns (model, preprocessing, classes, the checkpoint).
    """
    ckpt = read_checkpoint(path)
    if ckpt.adopted:  # an external model (saliency adopt)
        from saliency.models.adopted.record import rebuild

        model = rebuild(ckpt.adoption, ckpt.state_dict, path).to(device).eval()
        return model, ckpt.pre, list(ckpt.classes), ckpt
    spec = ckpt.spec
    with torch.device("meta"):  # no random init to overwrite (0.09 s for a ResNet-18)
        model = build_model(spec)
    try:
        model.load_state_dict(ckpt.state_dict, assign=True)
    except RuntimeError as exc:
        lines = [s.strip() for s in str(exc).splitlines() if s.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else "weights do not fit"
        raise ValueError(
            f"{path}: its weights do not fit its architecture ({spec.arch}): {detail[:160]}"
        ) from exc
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        model = build_model(spec)  # a buffer outside the state dict: build it for real
        model.load_state_dict(ckpt.state_dict)
    model.to(device).eval()
    return model, ckpt.pre, list(ckpt.classes), ckpt


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

    def submit(self, jobs: list[tuple[str | os.PathLike, Checkpoint]]) -> None:
        """Write each ``(path, checkpoint)`` in the background, after the previous batch."""
        snap = [(Path(p), _snapshot(c.to_dict())) for p, c in jobs]
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
