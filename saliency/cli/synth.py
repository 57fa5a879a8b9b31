"""``saliency synth``: render a planted-cue synthetic face data set."""

from __future__ import annotations

import argparse
from pathlib import Path

from saliency.data.synth.config import SynthConfig, parse_cue, parse_cue_cell, parse_group_tone


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="render a planted-cue face data set with exact landmarks and region masks",
        description=(
            "Render synthetic faces whose class information sits only in the cued regions. "
            "Writes images/, masks/, manifest.csv (with 68 landmarks) and synth.json."
        ),
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--n", type=int, default=2000, help="number of images (default 2000)")
    p.add_argument("--size", type=int, default=128, help="image side in px (default 128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--cue",
        action="append",
        default=[],
        metavar="REGION=STRENGTH",
        help="plant class information in a region: eyes, brows, nose, mouth, skin, hair; "
        "strength 0 (none) to 1 (strong); repeatable",
    )
    p.add_argument(
        "--cue-cell",
        action="append",
        default=[],
        metavar="CELL=P",
        help="in this cell an image carries its own class's cue with probability P, the other "
        "class's otherwise (e.g. B_F=0.5); repeatable",
    )
    p.add_argument(
        "--groups",
        default="A,B",
        help="subgroups, comma separated, optionally with skin-tone ranges on a 0 (light) to 1 "
        "(dark) scale: A=0:0.45,B=0.55:1 (default A,B with those ranges)",
    )
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs)")
    p.add_argument("--format", choices=("png", "jpg"), default="png", help="image file format")
    p.add_argument("--preview", action="store_true", help="also write preview.png")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> SynthConfig:
    groups = dict(parse_group_tone(g) for g in args.groups.split(",") if g.strip())
    if args.groups == "A,B":
        groups = None
    cues = dict(parse_cue(c) for c in args.cue)
    cells = dict(parse_cue_cell(c) for c in args.cue_cell)
    kwargs = {"groups": groups} if groups else {}
    return SynthConfig(
        n=args.n,
        size=args.size,
        seed=args.seed,
        cues=cues,
        cue_cells=cells,
        image_format=args.format,
        **kwargs,
    )


def run(args: argparse.Namespace) -> int:
    from saliency.cli.progress import bar
    from saliency.stages import synth

    cfg = config_from_args(args)
    with bar(cfg.n, "synth") as progress:
        res = synth.run(cfg, args.out, args.workers, args.preview, progress.update)
    report(res, cfg)
    return 0


def report(res, cfg: SynthConfig) -> None:
    """Print a synth stage's result: the count, the speed, the cells, the preview."""
    df, seconds = res.frame, max(res.seconds, 1e-9)
    cues = ", ".join(f"{k}={v:g}" for k, v in cfg.cues.items()) or "none"
    print(
        f"wrote {len(df)} faces ({cfg.size} px, cues: {cues}) to {res.manifest} "
        f"in {seconds:.1f} s ({len(df) / seconds:.0f} img/s)"
    )
    print(df.groupby(["group", "label"]).size().rename("n").to_string())
    if res.preview:
        print(f"preview: {res.preview}")
