"""``saliency average``: average maps and faces per selection, with optional contrasts."""

from __future__ import annotations

import argparse
from pathlib import Path

from saliency.analysis.names import NORMS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "average",
        help="average maps per split, group and class",
        description="Average stored maps after an explicit per-image "
        "normalization; e.g. --split incorrect --group AA_F.",
    )
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--split", default="all", help="all, correct or incorrect predictions")
    p.add_argument(
        "--group",
        action="append",
        help="subgroup, cell (AA_F) or all; "
        "repeatable; default: all, every subgroup and every cell",
    )
    p.add_argument("--class", dest="label", help="only this class")
    p.add_argument("--method", action="append", help="repeatable; default: every explained")
    p.add_argument(
        "--norm",
        choices=NORMS,
        default="max",
        help="per-image normalization before averaging (default max: m / max|m|)",
    )
    p.add_argument(
        "--contrast",
        help="compare with another selection: a split (correct, incorrect, all), a "
        "group/cell, or rest (every other image of the same split), with a max-t "
        "permutation test",
    )
    p.add_argument("--permutations", type=int, default=1000)
    p.add_argument("--maps-split", default="test", help="which explained data split")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.cli.chance import warn_if_at_chance
    from saliency.stages import average

    warn_if_at_chance(args.run)
    cfg = average.AverageConfig(
        args.run, args.split, args.group, args.label, args.method, args.norm, args.contrast,
        args.permutations, args.maps_split, args.workers,
    )  # fmt: skip
    return report(average.run(cfg))


def report(res) -> int:
    """Print an average stage's result; 1 when every selection was empty."""
    for m in res.messages:
        print(m)
    if not len(res.summary):
        print("nothing written: every selection was empty")
        return 1
    print(res.summary.to_string(index=False))
    print(f"-> {res.out}")
    return 0
