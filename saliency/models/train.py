"""Train a CAM-ready net: Adam, ReduceLROnPlateau on validation loss, early stopping.

Early stopping and the plateau schedule wait for learning: while the validation accuracy's
Wilson interval still reaches the majority class's share (the model is at chance, as a
subtle cue's model can be for several epochs), epochs count neither toward the patience nor
toward a learning-rate cut. Once a model has left chance it has learned for good, and both
run as usual. A model that never leaves chance trains all its epochs and says so.

Every random draw (shuffling, balanced sampling, augmentation) comes from one seeded
``torch.Generator``; dropout uses torch's global generator. Both states go into ``last.pt``
with the optimizer, scheduler and early-stopping counters, so ``resume=True`` continues an
interrupted run and ends, on CPU, with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from saliency.atomic import atomic_write_text
from saliency.binomial import at_chance
from saliency.models import outputs
from saliency.models.augment import augment
from saliency.models.checkpoint import (
    Checkpoint,
    CheckpointWriter,
    DataRecord,
    file_sha256,
    read_checkpoint,
)
from saliency.models.loader import ImageSource
from saliency.models.preprocess import normalize, to_unit
from saliency.models.recipe import Augmentation, TrainConfig
from saliency.models.trainset import TrainData, prepare
from saliency.models.zoo import ModelSpec, build_model, default_preprocessing, load_backbone
from saliency.rundir import best_checkpoint, last_checkpoint, train_log
from saliency.runtime import resolve_device


@dataclass
class EpochEvent:
    epoch: int
    row: dict
    improved: bool


class Trainer:
    """One training run; ``fit`` runs the remaining epochs."""

    def __init__(
        self,
        cfg: TrainConfig,
        data: TrainData | None = None,
        resume: bool = False,
        progress: Callable[[int], None] | None = None,
    ):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.data = data or prepare(cfg.manifest, cfg.classes, cfg.seed)
        self.classes = self.data.manifest.classes
        n_outputs = 1 if cfg.loss == "bce" else len(self.classes)
        self.spec = ModelSpec(
            cfg.arch, n_outputs, cfg.loss, cfg.output_stride, cfg.se, cfg.dropout, cfg.pretrained
        )
        self.pre = default_preprocessing(self.spec, cfg.size)
        self.device = resolve_device(cfg.device)
        self.cuda = self.device.type == "cuda"
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.model = build_model(self.spec)
        if cfg.pretrained:
            load_backbone(self.model, self.spec, cfg.pretrained)
        self.model.to(self.device)
        if self.cuda:
            self.model.to(memory_format=torch.channels_last)
        # foreach: one kernel per step for all tensors (torch's CPU default is a Python loop
        # over them, twice as slow here); the same arithmetic, bit for bit
        self.opt = torch.optim.Adam(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True
        )
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.opt, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
        )
        self.amp_dtype = (
            torch.bfloat16 if self.cuda and torch.cuda.is_bf16_supported() else torch.float16
        )
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.cuda and self.amp_dtype == torch.float16
        )
        self.epoch, self.best, self.bad_epochs = 0, float("inf"), 0
        self.learned = False  # has validation accuracy left chance yet?
        self.log: list[dict] = []
        m = self.data.manifest
        self.labels = torch.from_numpy(m.label_index())
        self.train_rows, self.val_rows = self.data.rows("train"), self.data.rows("val")
        self.data_record = {
            "manifest": str(Path(cfg.manifest).resolve()),
            "sha256": file_sha256(cfg.manifest),
            "n_train": int(self.train_rows.size),
            "n_val": int(self.val_rows.size),
            "seeded_split": self.data.seeded_split,
        }
        if resume:
            self._restore()
        used = np.concatenate([self.train_rows, self.val_rows])
        self.source = ImageSource(
            [m.abspath(m.df.at[i, "path"]) for i in used],
            self.pre,
            cfg.cache_bytes,
            cfg.workers,
            progress,
        )
        # the source holds train rows first (indices 0..n_train-1), then val rows
        self.source_y = self.labels[torch.from_numpy(used)]
        val_y = self.source_y[self.train_rows.size :]
        counts = torch.bincount(val_y, minlength=len(self.classes))
        self.val_chance = float(counts.max()) / max(1, int(val_y.numel()))
        if int((counts > 0).sum()) < 2:  # one class in val: chance cannot be judged
            self.learned = True

    # -- state -------------------------------------------------------------------------
    def _checkpoint(self, with_resume: bool) -> Checkpoint:
        ckpt = Checkpoint(
            spec=self.spec,
            classes=self.classes,
            pre=self.pre,
            state_dict=self.model.state_dict(),
            data=DataRecord.from_dict(self.data_record),
            epoch=self.epoch,
            val_loss=self.log[-1]["val_loss"] if self.log else None,
            val_accuracy=self.log[-1]["val_accuracy"] if self.log else None,
            train_config=self.cfg.to_dict(),
        )
        if with_resume:
            ckpt.resume = {
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "scaler": self.scaler.state_dict(),
                "best": self.best,
                "bad_epochs": self.bad_epochs,
                "learned": self.learned,
                "log": self.log,
                "generator": self.gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.cuda else [],
            }
        return ckpt

    def _restore(self) -> None:
        path = last_checkpoint(self.out)
        ckpt = read_checkpoint(path)
        if ckpt.data.sha256 != self.data_record["sha256"]:
            raise ValueError(f"{path} was trained on a different manifest; start a new run")
        if ckpt.spec != self.spec:
            raise ValueError(f"{path} has a different model spec; start a new run")
        if ckpt.resume is None:
            raise ValueError(f"{path} holds no resume state; start a new run")
        self.model.load_state_dict(ckpt.state_dict)
        r = ckpt.resume
        self.opt.load_state_dict(r["optimizer"])
        self.sched.load_state_dict(r["scheduler"])
        self.scaler.load_state_dict(r["scaler"])
        self.best, self.bad_epochs, self.log = r["best"], r["bad_epochs"], list(r["log"])
        self.learned = bool(r.get("learned", True))  # runs before this rule always counted
        self.gen.set_state(r["generator"])
        torch.set_rng_state(r["torch_rng"])
        if self.cuda and r["cuda_rng"]:
            torch.cuda.set_rng_state_all(r["cuda_rng"])
        self.epoch = int(ckpt.epoch)

    # -- loops -------------------------------------------------------------------------
    def _order(self) -> np.ndarray:
        """Source indices of one training epoch: a permutation, or class-balanced draws."""
        n = self.train_rows.size
        if self.cfg.balanced:
            y = self.source_y[:n]
            weight = 1.0 / torch.bincount(y, minlength=len(self.classes)).clamp(min=1)[y]
            return torch.multinomial(
                weight.double(), n, replacement=True, generator=self.gen
            ).numpy()
        return torch.randperm(n, generator=self.gen).numpy()

    def _autocast(self):
        if self.cuda:
            return torch.autocast("cuda", dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def _inputs(self, images: torch.Tensor, train: bool) -> torch.Tensor:
        x = to_unit(images.to(self.device, non_blocking=True))
        if train:
            x = augment(x, self.cfg.augmentation, self.gen)
        x = normalize(x, self.pre)
        return x.contiguous(memory_format=torch.channels_last) if self.cuda else x

    def _source_labels(self, idx: torch.Tensor) -> torch.Tensor:
        return self.source_y[idx].to(self.device)

    def train_epoch(self, step: Callable[[int], None] | None = None) -> tuple[float, float]:
        self.model.train()
        total, correct, loss_sum = 0, 0, 0.0
        for images, idx in self.source.batches(self._order(), self.cfg.batch_size):
            x, y = self._inputs(images, True), self._source_labels(idx)
            with self._autocast():
                logits = self.model(x)
                loss = outputs.loss(logits.float(), y)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            total += len(y)
            loss_sum += float(loss.detach()) * len(y)
            correct += int((outputs.predicted(logits.detach()) == y).sum())
            if step is not None:
                step(len(y))
        return loss_sum / total, correct / total

    @torch.inference_mode()
    def validate(self) -> tuple[float, float]:
        self.model.eval()
        total, correct, loss_sum = 0, 0, 0.0
        order = np.arange(self.train_rows.size, self.train_rows.size + self.val_rows.size)
        for images, idx in self.source.batches(order, self.cfg.batch_size):
            x, y = self._inputs(images, False), self._source_labels(idx)
            with self._autocast():
                logits = self.model(x).float()
            total += len(y)
            loss_sum += float(outputs.loss(logits, y)) * len(y)
            correct += int((outputs.predicted(logits) == y).sum())
        return loss_sum / total, correct / total

    def fit(
        self,
        on_epoch: Callable[[EpochEvent], None] | None = None,
        step: Callable[[int], None] | None = None,
    ) -> list[dict]:
        """Run epochs until ``epochs`` or early stopping; returns the log rows.

        Checkpoints are written in the background while the next epoch trains; all writes
        have finished when this returns (or raises).
        """
        writer = CheckpointWriter()
        try:
            self._fit(writer, on_epoch, step)
        finally:
            writer.close()
        return self.log

    def _fit(self, writer: CheckpointWriter, on_epoch, step) -> None:
        stopped = self.bad_epochs >= self.cfg.early_stopping
        while self.epoch < self.cfg.epochs and not stopped:
            start = time.perf_counter()
            train_loss, train_acc = self.train_epoch(step)
            val_loss, val_acc = self.validate()
            n_val = int(self.val_rows.size)
            chance = at_chance(round(val_acc * n_val), n_val, self.val_chance)
            self.learned = self.learned or not chance
            if self.learned:
                self.sched.step(val_loss)
            self.epoch += 1
            improved = val_loss < self.best
            if improved:
                self.best, self.bad_epochs = val_loss, 0
            elif self.learned:
                self.bad_epochs += 1
            row = {
                "epoch": self.epoch,
                "train_loss": train_loss,
                "train_accuracy": train_acc,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "val_at_chance": chance,
                "lr": self.opt.param_groups[0]["lr"],
                "seconds": round(time.perf_counter() - start, 3),
            }
            self.log.append(row)
            jobs = [(best_checkpoint(self.out), self._checkpoint(False))] if improved else []
            writer.submit([*jobs, (last_checkpoint(self.out), self._checkpoint(True))])
            atomic_write_text(train_log(self.out), pd.DataFrame(self.log).to_csv(index=False))
            stopped = self.bad_epochs >= self.cfg.early_stopping
            if on_epoch is not None:
                on_epoch(EpochEvent(self.epoch, row, improved))


def config_from_checkpoint(run: str | Path, **overrides) -> TrainConfig:
    """The training config stored in a run's last.pt (for ``--resume``)."""
    path = last_checkpoint(run)
    stored = read_checkpoint(path).train_config
    if stored is None:
        raise ValueError(f"{path} holds no training config: its model was not trained here")
    d = dict(stored)
    d["augmentation"] = Augmentation(**d["augmentation"])
    return replace(TrainConfig(**d), **overrides)
