"""``saliency synth``: render a planted-cue face data set (flags from :class:`SynthConfig`)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from saliency.cli.stage_command import register_stage

    p = register_stage(sub, "synth")
    p.add_argument("--preview", action="store_true", help="also write preview.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.cli.options import config_from_args
    from saliency.cli.stage_command import Bars
    from saliency.data.synth.config import SynthConfig
    from saliency.stages.contract import StageContext
    from saliency.stages.data import run_synth

    cfg = config_from_args(SynthConfig, args)
    bars = Bars()
    try:
        res = run_synth(cfg, StageContext(out=args.out, workers=args.workers, progress=bars),
                        args.preview)  # fmt: skip
    finally:
        bars.close()
    for line in res.lines():
        print(line)
    return 0
