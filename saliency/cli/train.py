"""``saliency train``: train the CAM-ready ResNet (flags from :class:`TrainConfig`).

``--resume`` continues ``RUN/checkpoints/last.pt`` with the run's own recipe; ``--epochs``
then raises its total (the recipe's other flags are ignored). Under torchrun
(``torchrun --nproc_per_node=N -m saliency -- train ...``) every rank trains its slice of each
batch (DistributedDataParallel); rank 0 alone prints and writes.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from saliency.cli.options import add_config_arguments
    from saliency.cli.stage_command import CONTEXT_FLAGS
    from saliency.models.recipe import TrainConfig

    p = sub.add_parser(
        "train",
        help="train the CAM-ready ResNet (or Inception v3, VGG16-GAP)",
        description="The recipe's every setting is a flag; --resume continues the run in --out "
        "with its own recipe (--epochs then raises its total). Under torchrun: torchrun "
        "--nproc_per_node=N -m saliency -- train ... (DistributedDataParallel; --batch-size is "
        "the global batch, each rank takes its slice; rank 0 writes the files).",
    )
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoints/last.pt")  # fmt: skip
    add_config_arguments(p, TrainConfig, skip=("manifest",))
    p.add_argument("--manifest", default=argparse.SUPPRESS,
                   help="manifest CSV (required unless --resume)")  # fmt: skip
    p.add_argument("--wait", **CONTEXT_FLAGS["wait"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train (or resume). Under torchrun, :func:`saliency.cli.main` has joined the process
    group, set this rank's device and silenced every rank's output but rank 0's."""
    from pathlib import Path

    from saliency.cli.options import config_from_args
    from saliency.cli.stage_command import Bars, held
    from saliency.models.recipe import TrainConfig
    from saliency.stages import train

    if not args.resume and getattr(args, "manifest", None) is None:
        raise ValueError("--manifest is required (or --resume an existing run)")
    out = Path(args.out)
    cfg = None if args.resume else config_from_args(TrainConfig, args)
    bars = Bars()
    try:
        with held(out, "train", args, create=True):  # one writer per run (saliency.runlock)
            epochs = getattr(args, "epochs", None) if args.resume else None
            device = getattr(args, "device", "auto")
            trainer = train.start(cfg, out, args.resume, epochs, device, bars("decode", 0))
            for line in train.describe_lines(trainer):
                print(line)
            total = trainer.data_record["n_train"] * max(trainer.cfg.epochs - trainer.epoch, 0)
            res = train.run(trainer, on_epoch=print_epoch, step=bars("train", total))
    finally:
        bars.close()
    for line in train.lines(res):
        print(line)
    return 0


def print_epoch(e) -> None:
    from saliency.stages.train import epoch_line

    print(epoch_line(e), flush=True)


def describe(trainer) -> None:
    from saliency.stages.train import describe_lines

    for line in describe_lines(trainer):
        print(line)
