"""``saliency share``: how much of each method's attribution falls in each facial region."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from saliency.analysis.names import OUTCOMES

if TYPE_CHECKING:
    from saliency.analysis.selection import Selection


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "share",
        help="attribution share per facial region",
        description="Per region (exclusive masks): share of positive attribution, share of "
        "area, enrichment (their ratio), with bootstrap intervals over images, per split and "
        "group; rank accuracy on synthetic data; agreement with `saliency ablate`.",
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
    p.set_defaults(func=run)


def selections(args, index, classes) -> list[Selection]:
    from saliency.analysis.selection import Selection, check_class, check_outcome
    from saliency.data.cells import ALL, class_keys, parse_group, present_groups

    outcomes = [check_outcome(o) for o in (args.split or OUTCOMES)]
    label = check_class(args.label, classes)
    groups = present_groups(index)
    if args.group:
        for g in args.group:
            parse_group(g, groups, classes)
        return [Selection(o, g, label) for o in outcomes for g in args.group]
    keys = class_keys(classes)
    sels = []
    for o in outcomes:
        sels += [Selection(o, ALL, label), *(Selection(o, g, label) for g in groups)]
        if label is None:
            sels += [Selection(o, ALL, c) for c in classes]
            sels += [Selection(o, f"{g}_{keys[c]}") for g in groups for c in classes]
    return sels


def _interval(e, lo, hi) -> str:
    return f"{e:.3g} [{lo:.3g}, {hi:.3g}]"


def run(args: argparse.Namespace) -> int:
    from saliency.analysis.recovered import judged
    from saliency.analysis.region_evidence import ablation_drops, ablation_fills
    from saliency.analysis.share_run import share_table
    from saliency.analysis.share_summary import summarize_shares
    from saliency.cli.chance import warn_if_at_chance
    from saliency.cli.progress import bar
    from saliency.data.atomic import atomic_write_text
    from saliency.data.cells import present_groups
    from saliency.methods.explain import explained_methods
    from saliency.rundir import record, require_run

    run_dir = require_run(args.run)
    warn_if_at_chance(run_dir)
    methods = explained_methods(run_dir, args.maps_split, args.method)
    drops = {}
    for fill in ablation_fills(run_dir):
        d = ablation_drops(run_dir, fill)
        if d is not None:
            drops[fill] = d
    from saliency.viz.share import enrichment_figure
    from saliency.viz.style import save_figure

    for method in methods:
        folder = run_dir / "saliency" / args.maps_split / method
        n = json.loads((folder / "meta.json").read_text())["shape"][0]
        with bar(n, f"share {method}") as progress:
            per, skipped, meta = share_table(folder, workers=args.workers, progress=progress.update)
        classes = meta["classes"]
        sels = selections(args, per, classes)
        can = judged(meta)
        tables = summarize_shares(
            per, classes, sels, drops, can, meta["ground_truth"], args.bootstrap, args.seed
        )
        out = run_dir / "share" / f"{method}_{args.maps_split}"
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "per_image.csv", per.to_csv(index=False, float_format="%.6g"))
        atomic_write_text(out / "skipped.csv", skipped.to_csv(index=False))
        for name in ("summary", "truth", "agreement"):
            table = getattr(tables, name)
            if len(table):
                atomic_write_text(
                    out / f"{name}.csv", table.to_csv(index=False, float_format="%.5g")
                )
            else:
                (out / f"{name}.csv").unlink(missing_ok=True)
        for m in tables.messages:
            print(f"{method}: {m}")
        if len(skipped):
            print(f"{method}: skipped {len(skipped)} image(s) (reasons in {out / 'skipped.csv'})")
        _print(method, tables, can, out)
        if not len(tables.summary):
            print(f"{method}: no image has positive attribution to share; nothing summarized")
            continue
        for split, t in tables.summary.groupby("split", sort=False):
            shown = ["all", *present_groups(per), *classes]  # cells: in summary.csv
            fig = enrichment_figure(t, f"{method}: enrichment, {split} predictions", shown)
            save_figure(fig, out / f"enrichment_{split}.png")
    record(run_dir, "share", {k: str(v) for k, v in vars(args).items() if k != "func"})
    return 0


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
        leader=["<- leads" if v else "" for v in first["share_leader"]],
    ).sort_values("enrichment_low", ascending=False)
    print(
        shown[["region", "share", "area", "enrichment", "leader"]].to_string(
            index=False, float_format=lambda v: f"{v:.3f}"
        )
    )
    if not can[0]:
        print(f"  {can[1]}: no recovery is claimed")
    t = tables.truth
    if len(t):
        r = t[(t["split"] == split) & (t["selection"] == sel)].iloc[0]
        ra = _interval(r["rank_accuracy"], r["rank_accuracy_low"], r["rank_accuracy_high"])
        ts = _interval(r["truth_share"], r["truth_share_low"], r["truth_share_high"])
        print(f"  planted {r['truth']}: rank accuracy {ra} (chance {r['chance']:.3f}), share {ts}")
    a = tables.agreement
    for _, r in a[(a["split"] == split) & (a["selection"] == sel)].iterrows() if len(a) else []:
        verdict = f"recovered: {r['recovered']}" if r["recovered"] else "nothing recovered"
        rho = _interval(r["spearman"], r["spearman_low"], r["spearman_high"])
        print(
            f"  vs ablation ({r['fill']}, n = {r['n']}): Spearman {rho}; ablation leader "
            f"{r['ablation_leader'] or 'none'}, share leader {r['share_leader'] or 'none'}; "
            + verdict
        )
    print(f"  -> {out}")
