"""``saliency agreement``: do ablation and attribution share single out the same region?"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "agreement",
        help="ablation vs attribution share: rank agreement and the recovered verdict",
        description="After `saliency share` and `saliency ablate` (delete mode, 3 or more "
        "regions): Spearman's rank correlation across regions between ablation drops and "
        "enrichments, with a joint bootstrap interval, and the recovered region per method, "
        "fill and selection.",
    )
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--method", action="append", help="repeatable; default: every shared")
    p.add_argument("--fill", action="append", help="repeatable; default: every ablated")
    p.add_argument(
        "--group", action="append", help="subgroup, cell (AA_F) or all; repeatable (default: "
        "all, every subgroup, class and cell)",
    )  # fmt: skip
    p.add_argument("--maps-split", default="test", help="which explained data split")
    p.add_argument("--bootstrap", type=int, default=2000, help="resamples per interval")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.cli.chance import warn_if_at_chance
    from saliency.stages import agreement

    warn_if_at_chance(args.run)
    cfg = agreement.AgreementConfig(
        args.run, args.maps_split, args.method, args.fill, args.group, args.bootstrap, args.seed
    )
    return report(agreement.run(cfg))


def report(res) -> int:
    """Print an agreement stage's result; 1 when shares or ablations are missing."""
    for line in res.missing:
        print(line)
    if not res.tables:
        return 1
    for line in dict.fromkeys(res.notes):
        print(line)
    print("agreement of ablation and attribution share (Spearman across regions, 95% interval):")
    for method, t in res.tables.items():
        shown = t[t["split"] == "all"] if len(t) else t
        for _, r in shown.iterrows():
            verdict = (
                f"recovered: {r['recovered']}" if r["recovered"]
                else "nothing recovered" if r["judged"] == "yes" else f"no verdict ({r['judged']})"
            )  # fmt: skip
            print(
                f"  {method}, {r['selection']} ({r['fill']}, n = {r['n']}): {r['spearman']:.2f} "
                f"[{r['spearman_low']:.2f}, {r['spearman_high']:.2f}]; ablation leader "
                f"{r['ablation_leader'] or 'none'}, enrichment leader "
                f"{r['share_leader'] or 'none'}, lift leader {r['lift_leader'] or 'none'}; "
                f"{verdict}"
            )
    print(f"-> {res.out}")
    return 0
