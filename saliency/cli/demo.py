"""``saliency demo``: the study on built-in synthetic faces with planted cues.

So far the demo renders the data set (brows cue, a hard B_F cell), its preview sheet, and
validates the manifest; training, maps and region analyses join as they land.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from saliency.cli import synth as synth_cmd
from saliency.cli.data import check_and_report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole study on built-in synthetic faces")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    p.add_argument("--n", type=int, default=2000, help="number of synthetic faces")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data = args.out / "data"
    synth_args = argparse.Namespace(
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
    print(f"[1/2] synth: {args.n} faces, brows cue, B_F carries its own cue half the time")
    synth_cmd.run(synth_args)
    print("[2/2] data check")
    return check_and_report(data / "manifest.csv", classes=None, decode=False, report=None)
