"""``saliency demo``: the study on built-in synthetic faces with planted cues.

So far: render the data set (brows cue, a hard B_F cell) and its preview sheet, validate the
manifest, train the CAM-ready ResNet-18 and evaluate it per subgroup and cell. Maps and
region analyses join as they land.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole study on built-in synthetic faces")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    p.add_argument("--n", type=int, default=2000, help="number of synthetic faces")
    p.add_argument("--size", type=int, default=128, help="synthetic image side in px")
    p.add_argument("--train-size", type=int, default=64, help="model input side in px")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.cli import evaluate as evaluate_cmd
    from saliency.cli import synth as synth_cmd
    from saliency.cli import train as train_cmd
    from saliency.cli.data import check_and_report
    from saliency.rundir import best_checkpoint

    data, run_dir = args.out / "data", args.out / "run"
    manifest = data / "manifest.csv"
    print(f"[1/4] synth: {args.n} faces, brows cue, B_F carries its own cue half the time")
    if manifest.is_file():
        print(f"  {manifest} exists; keeping it")
    else:
        synth_cmd.run(
            argparse.Namespace(
                out=data,
                n=args.n,
                size=args.size,
                seed=args.seed,
                cue=["brows=1"],
                cue_cell=["B_F=0.5"],
                groups="A,B",
                workers=None,
                format="png",
                preview=True,
            )
        )
    print("[2/4] data check")
    if check_and_report(manifest, classes=None, decode=False, report=None) != 0:
        return 1
    print(f"[3/4] train: resnet18 at {args.train_size} px")
    if best_checkpoint(run_dir).is_file():
        print(f"  {run_dir} already trained; keeping it")
    else:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        train_cmd.register(sub)
        targs = parser.parse_args(
            [
                "train",
                "--manifest",
                str(manifest),
                "--out",
                str(run_dir),
                "--size",
                str(args.train_size),
                "--epochs",
                str(args.epochs),
                "--seed",
                str(args.seed),
            ]
        )
        train_cmd.run(targs)
    print("[4/4] evaluate on the test split")
    return evaluate_cmd.run_evaluate(
        argparse.Namespace(
            run=run_dir, split="test", manifest=None, batch_size=128, workers=2, device="auto"
        )
    )
