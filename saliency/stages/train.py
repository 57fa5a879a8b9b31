"""The train stage: a CAM-ready net on a manifest, into a run folder (or continue one).

Writes ``RUN/checkpoints/{best,last}.pt``, ``RUN/train_log.csv`` and the ``train`` record
of ``RUN/config.json``. ``start`` builds (or restores) the trainer, so the caller can report
what will run; ``run`` trains it. Under torchrun every rank runs both (DistributedDataParallel);
rank 0 alone writes the files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from saliency.distributed import World, from_env, rank_device
from saliency.imsize import size_text
from saliency.models.recipe import TrainConfig
from saliency.models.train import EpochEvent, Trainer, config_from_checkpoint
from saliency.rundir import last_checkpoint, record
from saliency.stages.contract import Result, StageContext


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
    world: World | None = None,
) -> Trainer:
    """A trainer for a new run from ``cfg``, or, with ``resume``, for ``out``'s own run
    (``epochs`` raises its total). ``decode`` counts images as they are decoded. ``world``:
    this process among torchrun's (default: its process group's; see :class:`Trainer`)."""
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
    trainer = Trainer(cfg, resume=resume, progress=decode, world=world)
    if trainer.world.main:
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


def describe_lines(trainer: Trainer) -> list[str]:
    """What a train stage is about to do (printed before it trains)."""
    cfg, d = trainer.cfg, trainer.data_record
    n = trainer.world.size
    ranks = f" x {n} processes (DDP{', sync-bn' if cfg.sync_bn else ''})" if n > 1 else ""
    out = [
        f"{cfg.arch} (output stride {cfg.output_stride}, {trainer.spec.n_outputs} logit(s)) on "
        f"{trainer.device}{ranks}: {d['n_train']} train / {d['n_val']} val images at "
        f"{size_text(cfg.size)} px, classes {trainer.classes}"
        + (" (seeded split)" if d["seeded_split"] else "")
    ]
    if trainer.epoch:
        out.append(f"resuming after epoch {trainer.epoch} of {cfg.epochs}")
    if trainer.epoch >= cfg.epochs:
        out.append(f"nothing to do: the run already has {trainer.epoch} epochs (raise --epochs)")
    elif trainer.bad_epochs >= cfg.early_stopping:
        out.append(
            f"nothing to do: the run stopped early after {trainer.bad_epochs} epochs without a "
            "better validation loss; more --epochs will not restart it"
        )
    return out


def epoch_line(e: EpochEvent) -> str:
    """One finished epoch as a line (``*``: a better validation loss)."""
    r = e.row
    mark = (" *" if e.improved else "") + ("  (at chance)" if r.get("val_at_chance") else "")
    return (
        f"epoch {r['epoch']:3d}  train loss {r['train_loss']:.4f} acc {r['train_accuracy']:.3f}"
        f"  val loss {r['val_loss']:.4f} acc {r['val_accuracy']:.3f}  lr {r['lr']:.1e}"
        f"  {r['seconds']:.0f}s{mark}"
    )


def lines(res: TrainResult) -> list[str]:
    """What the command prints after training: the best epoch; a warning if it never learned."""
    out = []
    if res.best:
        b = res.best
        out.append(
            f"best epoch {b['epoch']}: val loss {b['val_loss']:.4f}, val accuracy "
            f"{b['val_accuracy']:.3f} -> {res.out / 'checkpoints' / 'best.pt'}"
        )
    if not res.learned:
        out.append(
            f"warning: validation accuracy never left chance ({res.val_chance:.1%}, the "
            "majority class) in any epoch; the model has learned nothing its maps could show. "
            "Try more epochs or another --lr."
        )
    return out


def run_stage(cfg: TrainConfig, ctx: StageContext) -> Result:
    """The stage contract: train ``cfg`` into the context's run folder; an interrupted run
    there (``last.pt``) continues, to ``cfg.epochs``. ``ctx.on_trainer`` hears the trainer
    before it trains, ``ctx.on_epoch`` each epoch (on every rank under torchrun: the
    caller prints on rank 0). Every rank of the context's world runs this."""
    out = Path(ctx.run)
    world = World(ctx.rank, ctx.world_size, from_env().local_rank if ctx.world_size > 1 else 0)
    device = rank_device(ctx.device, world)  # auto: this rank's GPU
    resume = ctx.resume or last_checkpoint(out).is_file()
    new = None if resume else replace(ctx.fill(cfg), device=device)
    epochs = cfg.epochs if resume else None
    trainer = start(new, out, resume, epochs, device, ctx.progress("decode", 0), world)
    if ctx.on_trainer is not None:
        ctx.on_trainer(trainer)
    total = trainer.data_record["n_train"] * max(trainer.cfg.epochs - trainer.epoch, 0)
    res = run(trainer, on_epoch=ctx.on_epoch, step=ctx.progress("train", total))
    return Result(res, lines(res))
