"""``saliency share``: how much of each method's attribution falls in each facial region."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "share",
        help="attribution share per facial region",
        description="Per region (exclusive masks): share of positive attribution, share of "
        "area, enrichment (their ratio), with bootstrap intervals over images, per split and "
        "group; rank accuracy on synthetic data. `saliency agreement` compares them with "
        "`saliency ablate`.",
    )
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--method", action="append", help="repeatable; default: every explained")
    p.add_argument(
        "--split", action="append", help="all, correct or incorrect predictions; repeatable "
        "(default: all three)",
    )  # fmt: skip
    p.add_argument(
        "--group", action="append", help="subgroup, cell (AA_F) or all; repeatable (default: "
        "all, every subgroup, class and cell)",
    )  # fmt: skip
    p.add_argument("--class", dest="label", help="only this class")
    p.add_argument("--maps-split", default="test", help="which explained data split")
    p.add_argument("--bootstrap", type=int, default=2000, help="resamples per interval")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--manifest",
        type=Path,
        help="region masks for the explained images (e.g. the manifest `saliency regions` "
        "wrote), matched by path (default: the masks explain was given, else the run's)",
    )
    p.set_defaults(func=run)


def _interval(e, lo, hi) -> str:
    return f"{e:.3g} [{lo:.3g}, {hi:.3g}]"


def run(args: argparse.Namespace) -> int:
    from saliency.cli.chance import warn_if_at_chance
    from saliency.cli.progress import bar
    from saliency.stages import share

    warn_if_at_chance(args.run)
    cfg = share.ShareConfig(
        args.run, args.method, args.split, args.group, args.label, args.maps_split,
        args.bootstrap, args.seed, args.workers, args.manifest,
    )  # fmt: skip
    bars = []

    def progress(method: str, n: int):
        bars.append(bar(n, f"share {method}"))
        return bars[-1].update

    try:
        res = share.run(cfg, progress)
    finally:
        for b in bars:
            b.close()
    report(res)
    return 0


def report(res) -> None:
    """Print a share stage's result, method by method."""
    for m in res.methods:
        for line in m.tables.messages:
            print(f"{m.method}: {line}")
        if m.skipped:
            print(f"{m.method}: skipped {m.skipped} image(s) (reasons in {m.out / 'skipped.csv'})")
        _print(m.method, m.tables, m.judged, m.out)
        if not len(m.tables.summary):
            print(f"{m.method}: no image has positive attribution to share; nothing summarized")


def _print(method: str, tables, can: tuple[bool, str], out: Path) -> None:
    s = tables.summary
    if not len(s):
        return
    first = s[(s["split"] == s["split"].iloc[0]) & (s["selection"] == s["selection"].iloc[0])]
    split, sel = first["split"].iloc[0], first["selection"].iloc[0]
    print(f"{method}: {sel}, {split} predictions (n = {first['n'].iloc[0]}), 95% intervals")
    shown = first.assign(
        share=[_interval(*v) for v in first[["share", "share_low", "share_high"]].to_numpy()],
        enrichment=[
            _interval(*v)
            for v in first[["enrichment", "enrichment_low", "enrichment_high"]].to_numpy()
        ],
        leader=["<- highest enrichment" if v else "" for v in first["share_leader"]],
    ).sort_values("enrichment_low", ascending=False)
    print(
        shown[["region", "share", "area", "enrichment", "leader"]].to_string(
            index=False, float_format=lambda v: f"{v:.3f}"
        )
    )
    if not can[0]:
        print(f"  {can[1]}: no recovery is claimed")
    else:  # enrichment is description; the verdict needs the null (analysis.recovered)
        print(
            "  shares and enrichment describe the maps; whether a region is recovered needs the "
            "null model: `saliency null`, then `saliency validate` (or `saliency agreement`)"
        )
    t = tables.truth
    if len(t):
        r = t[(t["split"] == split) & (t["selection"] == sel)].iloc[0]
        ra = _interval(r["rank_accuracy"], r["rank_accuracy_low"], r["rank_accuracy_high"])
        ts = _interval(r["truth_share"], r["truth_share_low"], r["truth_share_high"])
        print(f"  planted {r['truth']}: rank accuracy {ra} (chance {r['chance']:.3f}), share {ts}")
    print(f"  -> {out}")
