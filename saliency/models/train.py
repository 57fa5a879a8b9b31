"""Train a CAM-ready net: the recipe's optimizer, schedule and frozen blocks
(models.optim; Adam and ReduceLROnPlateau on validation loss by default), early stopping.

Early stopping and the plateau schedule wait for learning: while the validation accuracy's
Wilson interval still reaches the majority class's share (the model is at chance, as a
subtle cue's model can be for several epochs), epochs count neither toward the patience nor
toward a learning-rate cut. Once a model has left chance it has learned for good, and both
run as usual. A model that never leaves chance trains all its epochs and says so. The null
model (shuffled labels: it should never leave chance) does not wait
(``wait_for_learning=False``): it stops on validation loss alone. The step and cosine
schedules step after every epoch whatever the model has learned. ``stop_reason`` says why
training stopped.

The epoch's order (a permutation, or class-balanced draws) comes from one seeded
``torch.Generator`` whose state goes into ``last.pt`` with the optimizer, scheduler and
early-stopping counters; an image's augmentation is a hash of (seed, epoch, its position in
the order) (:class:`~saliency.models.augment.SampleDraws`), and dropout's global generator
is reseeded each epoch from (seed, epoch, rank). So ``resume=True`` continues an interrupted
run and ends, on CPU, with the same weights as an uninterrupted one.

Under torchrun the model trains under DistributedDataParallel, each rank on its slice of
every global batch (:mod:`saliency.models.ddp`); validation sums are reduced over the ranks,
so all take the same decisions; rank 0 alone writes checkpoints and the log.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from saliency.atomic import atomic_write_text
from saliency.binomial import at_chance
from saliency.distributed import World, barrier, broadcast, span
from saliency.models import ddp, optim, outputs
from saliency.models.augment import SampleDraws, augment
from saliency.models.checkpoint import (
    Checkpoint,
    CheckpointWriter,
    DataRecord,
    file_sha256,
    read_checkpoint,
)
from saliency.models.loader import ImageSource
from saliency.models.preprocess import normalize, to_unit
from saliency.models.recipe import TrainConfig
from saliency.models.trainset import TrainData, epoch_order, prepare
from saliency.models.trainset import config_from_checkpoint as config_from_checkpoint
from saliency.models.zoo import ModelSpec, build_model, default_preprocessing, load_backbone
from saliency.rundir import best_checkpoint, last_checkpoint, train_log
from saliency.runtime import resolve_device


@dataclass
class EpochEvent:
    epoch: int
    row: dict
    improved: bool


class Trainer:
    """One training run; ``fit`` runs the remaining epochs. ``world``: this process among
    torchrun's (default: the process group it is in, or one process)."""

    def __init__(
        self,
        cfg: TrainConfig,
        data: TrainData | None = None,
        resume: bool = False,
        progress: Callable[[int], None] | None = None,
        world: World | None = None,
        wait_for_learning: bool = True,
    ):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.device = resolve_device(cfg.device)
        self.cuda = self.device.type == "cuda"
        ddp.check_sync_bn(cfg.sync_bn, self.device)
        self.world = ddp.current_world(world, str(self.device))
        self.data = data or prepare(cfg.manifest, cfg.classes, cfg.seed)
        self.classes = self.data.manifest.classes
        n_outputs = 1 if cfg.loss == "bce" else len(self.classes)
        self.spec = ModelSpec(
            cfg.arch, n_outputs, cfg.loss, cfg.output_stride, cfg.se, cfg.dropout, cfg.pretrained
        )
        self.pre = default_preprocessing(self.spec, cfg.size)
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.model = build_model(self.spec)
        if cfg.pretrained:
            load_backbone(self.model, self.spec, cfg.pretrained)
        self.model.to(self.device)
        if self.cuda:
            self.model.to(memory_format=torch.channels_last)
        self.model = ddp.prepare_model(self.model, cfg.sync_bn)
        self.frozen = optim.freeze(self.model, cfg.freeze)
        self.opt = optim.optimizer(self.model, cfg)
        self.sched = optim.scheduler(self.opt, cfg)
        self.wait_for_learning = wait_for_learning
        self.stop_reason = ""  # why fit() stopped (empty while epochs remain)
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
        self.net = ddp.wrap(self.model, self.world, self.device)  # what trains; model: saved
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
                # rank 0's, for the record: dropout's generators are reseeded each epoch
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
        self.epoch = int(ckpt.epoch)

    # -- loops -------------------------------------------------------------------------
    def _order(self) -> np.ndarray:
        """Source indices of one training epoch (the same on every rank)."""
        y = self.source_y[: self.train_rows.size]
        return epoch_order(y, len(self.classes), self.cfg.balanced, self.gen)

    def _autocast(self):
        if self.cuda:
            return torch.autocast("cuda", dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def _inputs(self, images: torch.Tensor, draws: SampleDraws | None = None) -> torch.Tensor:
        """uint8 ``[N, h, w, 3]`` -> the model's input ``[N, 3, h, w]``, augmented with
        ``draws`` (training) or not (validation)."""
        x = to_unit(images.to(self.device, non_blocking=True))
        if draws is not None:
            x = augment(x, self.cfg.augmentation, draws)
        x = normalize(x, self.pre)
        return x.contiguous(memory_format=torch.channels_last) if self.cuda else x

    def _source_labels(self, idx: torch.Tensor) -> torch.Tensor:
        return self.source_y[idx].to(self.device)

    def backward(
        self, images: torch.Tensor, idx: torch.Tensor, pos: np.ndarray, n_global: int
    ) -> tuple[float, int]:
        """Forward and backward of this rank's slice of a global batch of ``n_global``
        images: ``images`` uint8 ``[b, h, w, 3]``, ``idx`` their source indices ``[b]``,
        ``pos`` their positions in this epoch's order ``[b]`` (``b`` may be 0). The gradient,
        once DDP has averaged it over the ranks, is that of the global batch's mean loss.
        Returns this slice's summed loss and its number of correct predictions."""
        x = self._inputs(images, SampleDraws(self.cfg.seed, self.epoch, pos))
        y = self._source_labels(idx)
        with self._autocast():
            logits = self.net(x)
            if len(y):
                mean = outputs.loss(logits.float(), y)
            else:  # an empty slice: zero gradients, still every parameter (DDP's all-reduce)
                mean = logits.float().sum()
        factor = ddp.loss_factor(len(y), n_global, self.world.size)
        self.scaler.scale(mean * factor).backward()
        correct = int((outputs.predicted(logits.detach()) == y).sum())
        return float(mean.detach()) * len(y), correct

    def train_epoch(self, step: Callable[[int], None] | None = None) -> tuple[float, float]:
        """One epoch; its loss and accuracy over every rank's images. ``step`` counts the
        global batches' images."""
        self.net.train()
        optim.hold_frozen(self.frozen)
        torch.manual_seed(ddp.epoch_seed(self.cfg.seed, self.epoch, self.world.rank))
        sums = [0.0, 0.0, 0.0]  # loss sum, correct, images
        order = self._order()
        for images, idx, pos, n in ddp.local_batches(
            self.source, order, self.cfg.batch_size, self.world
        ):
            self.opt.zero_grad(set_to_none=True)
            loss_sum, correct = self.backward(images, idx, pos, n)
            self.scaler.step(self.opt)
            self.scaler.update()
            sums = [sums[0] + loss_sum, sums[1] + correct, sums[2] + len(idx)]
            if step is not None:
                step(n)
        loss_sum, correct, total = ddp.reduce_sums(sums, self.device)
        return loss_sum / total, correct / total

    @torch.inference_mode()
    def validate(self) -> tuple[float, float]:
        """Validation loss and accuracy: each rank its contiguous part of the rows, the
        float64 sums reduced, so every rank returns the same numbers."""
        ddp.sync_buffers(self.model, self.world)
        self.model.eval()
        sums = [0.0, 0.0, 0.0]  # loss sum, correct, images
        lo, hi = span(int(self.val_rows.size), self.world.rank, self.world.size)
        order = np.arange(lo, hi) + self.train_rows.size
        for images, idx in self.source.batches(order, self.cfg.batch_size):
            x, y = self._inputs(images), self._source_labels(idx)
            with self._autocast():
                logits = self.model(x).float()
            sums[0] += float(outputs.loss(logits, y)) * len(y)
            sums[1] += int((outputs.predicted(logits) == y).sum())
            sums[2] += len(y)
        loss_sum, correct, total = ddp.reduce_sums(sums, self.device)
        return loss_sum / total, correct / total

    def fit(
        self,
        on_epoch: Callable[[EpochEvent], None] | None = None,
        step: Callable[[int], None] | None = None,
    ) -> list[dict]:
        """Run epochs until ``epochs`` or early stopping; returns the log rows.

        Checkpoints are written in the background while the next epoch trains (by rank 0);
        all writes have finished when this returns (or raises), on every rank.
        """
        writer = CheckpointWriter()
        try:
            self._fit(writer, on_epoch, step)
        finally:
            writer.close()
        barrier()  # the other ranks wait for rank 0's files
        return self.log

    def _fit(self, writer: CheckpointWriter, on_epoch, step) -> None:
        stopped = self.bad_epochs >= self.cfg.early_stopping
        while self.epoch < self.cfg.epochs and not stopped:
            start = time.perf_counter()
            train_loss, train_acc = self.train_epoch(step)
            val_loss, val_acc = self.validate()
            # equal on every rank already (reduced sums); rank 0's, so decisions are too
            train_loss, train_acc, val_loss, val_acc = broadcast(
                (train_loss, train_acc, val_loss, val_acc)
            )
            n_val = int(self.val_rows.size)
            chance = at_chance(round(val_acc * n_val), n_val, self.val_chance)
            self.learned = self.learned or not chance
            counts = self.learned or not self.wait_for_learning
            if self.cfg.scheduler != "plateau":
                self.sched.step()
            elif counts:
                self.sched.step(val_loss)
            self.epoch += 1
            improved = val_loss < self.best
            if improved:
                self.best, self.bad_epochs = val_loss, 0
            elif counts:
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
            if self.world.main:
                jobs = [(best_checkpoint(self.out), self._checkpoint(False))] if improved else []
                writer.submit([*jobs, (last_checkpoint(self.out), self._checkpoint(True))])
                log = pd.DataFrame(self.log).to_csv(index=False)
                atomic_write_text(train_log(self.out), log)
            stopped = self.bad_epochs >= self.cfg.early_stopping
            if on_epoch is not None:
                on_epoch(EpochEvent(self.epoch, row, improved))
        if self.bad_epochs >= self.cfg.early_stopping:
            self.stop_reason = (f"early stopping after epoch {self.epoch}: {self.bad_epochs} "
                                "epochs without a better validation loss")  # fmt: skip
        else:
            self.stop_reason = f"all {self.epoch} epochs"
