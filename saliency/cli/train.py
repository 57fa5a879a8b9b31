"""``saliency train``: train the CAM-ready net on a manifest."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from saliency.models.names import ARCHS
from saliency.models.recipe import Augmentation, TrainConfig

if TYPE_CHECKING:
    from saliency.models.train import EpochEvent


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the CAM-ready ResNet (or Inception v3, VGG16-GAP)")
    p.add_argument("--manifest", type=Path, help="manifest CSV (required unless --resume)")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue from RUN/checkpoints/last.pt")
    d = TrainConfig(manifest="", out="")
    p.add_argument("--arch", choices=ARCHS, default=d.arch)
    p.add_argument("--size", type=int, default=d.size, help="input side in px (default 128)")
    p.add_argument(
        "--loss",
        choices=("bce", "ce"),
        default=d.loss,
        help="bce: one logit; ce: one logit per class",
    )
    p.add_argument("--output-stride", type=int, choices=(16, 32), default=d.output_stride)
    p.add_argument("--se", action="store_true", help="squeeze-and-excitation blocks (ResNets)")
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--pretrained", help="'imagenet' (from the local torch hub cache) or a file")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument(
        "--epochs",
        type=int,
        help=f"total epochs (default {d.epochs}); with --resume, raises the run's own total",
    )
    p.add_argument("--plateau-patience", type=int, default=d.plateau_patience)
    p.add_argument("--plateau-factor", type=float, default=d.plateau_factor)
    p.add_argument(
        "--early-stopping",
        type=int,
        default=d.early_stopping,
        help="stop after this many epochs without a better validation loss (epochs while "
        "validation accuracy is still at chance do not count)",
    )
    p.add_argument("--balanced", action="store_true", help="sample classes equally")
    p.add_argument("--classes", help="class names in order, comma separated")
    p.add_argument("--seed", type=int, default=d.seed)
    a = Augmentation()
    p.add_argument("--hflip", type=float, default=a.hflip, help="flip probability")
    p.add_argument("--rotation", type=float, default=a.rotation_deg, help="max degrees")
    p.add_argument("--brightness", type=float, default=a.brightness)
    p.add_argument("--contrast", type=float, default=a.contrast)
    p.add_argument(
        "--erase",
        type=float,
        default=a.erase,
        help="random erasing probability: one box of 2-33%% of the image, filled with its "
        "mean color (default 0: off)",
    )
    p.add_argument(
        "--shift",
        type=float,
        default=a.shift,
        help="translation jitter, uniform in [-s, s] of the image side per axis; aligned faces "
        "otherwise let the net tie evidence to absolute position (default 0: off)",
    )
    p.add_argument("--workers", type=int, default=d.workers, help="image decoding workers")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.manifest is None:
        raise ValueError("--manifest is required (or --resume an existing run)")
    return TrainConfig(
        manifest=str(args.manifest),
        out=str(args.out),
        arch=args.arch,
        size=args.size,
        loss=args.loss,
        output_stride=args.output_stride,
        se=args.se,
        dropout=args.dropout,
        pretrained=args.pretrained,
        lr=args.lr,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        epochs=args.epochs if args.epochs is not None else TrainConfig.epochs,
        plateau_factor=args.plateau_factor,
        plateau_patience=args.plateau_patience,
        early_stopping=args.early_stopping,
        balanced=args.balanced,
        seed=args.seed,
        classes=[c.strip() for c in args.classes.split(",")] if args.classes else None,
        augmentation=Augmentation(
            args.hflip, args.rotation, args.brightness, args.contrast, args.erase, args.shift
        ),
        workers=args.workers,
        device=args.device,
    )


def run(args: argparse.Namespace) -> int:
    from saliency.cli.progress import bar
    from saliency.stages import train

    cfg = None if args.resume or args.manifest is None else config_from_args(args)
    with bar(0, "decode", unit="img") as decode:
        trainer = train.start(cfg, args.out, args.resume, args.epochs, args.device, decode.update)
    describe(trainer)
    with bar(trainer.data_record["n_train"] * (trainer.cfg.epochs - trainer.epoch), "train") as b:
        res = train.run(trainer, on_epoch=print_epoch, step=b.update)
    report(res)
    return 0


def describe(trainer) -> None:
    """Print what a train stage is about to do."""
    cfg, d = trainer.cfg, trainer.data_record
    print(
        f"{cfg.arch} (output stride {cfg.output_stride}, {trainer.spec.n_outputs} logit(s)) on "
        f"{trainer.device}: {d['n_train']} train / {d['n_val']} val images at {cfg.size} px, "
        f"classes {trainer.classes}" + (" (seeded split)" if d["seeded_split"] else "")
    )
    if trainer.epoch:
        print(f"resuming after epoch {trainer.epoch} of {cfg.epochs}")
    if trainer.epoch >= cfg.epochs:
        print(f"nothing to do: the run already has {trainer.epoch} epochs (raise --epochs)")
    elif trainer.bad_epochs >= cfg.early_stopping:
        print(
            f"nothing to do: the run stopped early after {trainer.bad_epochs} epochs without a "
            "better validation loss; more --epochs will not restart it"
        )


def print_epoch(e: EpochEvent) -> None:
    r = e.row
    mark = (" *" if e.improved else "") + ("  (at chance)" if r.get("val_at_chance") else "")
    print(
        f"epoch {r['epoch']:3d}  train loss {r['train_loss']:.4f} acc {r['train_accuracy']:.3f}"
        f"  val loss {r['val_loss']:.4f} acc {r['val_accuracy']:.3f}  lr {r['lr']:.1e}"
        f"  {r['seconds']:.0f}s{mark}",
        flush=True,
    )


def report(res) -> None:
    """Print a train stage's result: the best epoch, and a warning when it never learned."""
    if res.best:
        b = res.best
        print(
            f"best epoch {b['epoch']}: val loss {b['val_loss']:.4f}, val accuracy "
            f"{b['val_accuracy']:.3f} -> {res.out / 'checkpoints' / 'best.pt'}"
        )
    if not res.learned:
        print(
            f"warning: validation accuracy never left chance ({res.val_chance:.1%}, the "
            "majority class) in any epoch; the model has learned nothing its maps could show. "
            "Try more epochs or another --lr."
        )
