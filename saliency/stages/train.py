"""The train stage: a CAM-ready net on a manifest, into a run folder (or continue one).

Writes ``RUN/checkpoints/{best,last}.pt``, ``RUN/train_log.csv`` and the ``train`` record
of ``RUN/config.json``. ``start`` builds (or restores) the trainer, so the caller can report
what will run; ``run`` trains it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from saliency.models.recipe import TrainConfig
from saliency.models.train import EpochEvent, Trainer, config_from_checkpoint
from saliency.rundir import last_checkpoint, record


@dataclass
class TrainResult:
    out: Path
    log: list[dict]  # one row per epoch, as train_log.csv
    best: dict  # the row of the best validation loss
    learned: bool  # did validation accuracy ever leave chance?
    val_chance: float  # the majority class's share of the validation split


def start(
    cfg: TrainConfig | None,
    out: str | Path,
    resume: bool = False,
    epochs: int | None = None,
    device: str = "auto",
    decode: Callable[[int], None] | None = None,
) -> Trainer:
    """A trainer for a new run from ``cfg``, or, with ``resume``, for ``out``'s own run
    (``epochs`` raises its total). ``decode`` counts images as they are decoded."""
    if resume:
        if not last_checkpoint(out).is_file():
            raise FileNotFoundError(f"nothing to resume: {last_checkpoint(out)} not found")
        cfg = config_from_checkpoint(out, out=str(out), device=device)
        if epochs is not None:  # a longer run: same draws, scheduler and log, more epochs
            cfg = replace(cfg, epochs=epochs)
    else:
        if cfg is None:
            raise ValueError("--manifest is required (or --resume an existing run)")
        if last_checkpoint(out).is_file():
            raise ValueError(f"{out} already holds a run; use --resume, or another --out")
    trainer = Trainer(cfg, resume=resume, progress=decode)
    record(out, "train", cfg.to_dict())
    return trainer


def run(
    trainer: Trainer,
    on_epoch: Callable[[EpochEvent], None] | None = None,
    step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train the remaining epochs; ``step`` counts training images."""
    log = trainer.fit(on_epoch=on_epoch, step=step)
    best = min(log, key=lambda r: r["val_loss"]) if log else {}
    out = Path(trainer.cfg.out)
    return TrainResult(out, log, best, trainer.learned, trainer.val_chance)
