"""``saliency ablate``: fill facial regions and measure how the model's output changes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from saliency.data.regions import REGIONS
from saliency.perturb.names import FILL_PLACES, FILLS, MODES

if TYPE_CHECKING:
    import pandas as pd


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ablate",
        help="region masking ablations, e.g. --region eyes",
        description="delete fills the region (dilated and feathered, DESIGN.md's recipe); keep "
        "fills everything but it. All regions go through one pass over the data.",
    )
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--region", default="all", help=f"{', '.join(REGIONS)} or all")
    p.add_argument("--fill", choices=FILLS, default="blur")
    p.add_argument("--mode", choices=MODES, default="delete")
    p.add_argument("--split", default="test")
    p.add_argument(
        "--group", action="append", help="subgroup, cell (AA_F) or all; repeatable (default all)"
    )
    p.add_argument(
        "--no-protect",
        dest="protect",
        action="store_false",
        help="the reference recipe exactly: a deleted region's feathered fill may spill onto "
        "neighbouring features (by default eyes, brows, nose and mouth are left untouched by "
        "other regions' fills)",
    )
    p.add_argument(
        "--fill-on",
        choices=FILL_PLACES,
        default="auto",
        help="where the fills run: DataLoader workers with OpenCV, or batched on the model's "
        "device (the same bytes; auto: workers on a CPU, the device on a GPU)",
    )
    p.add_argument("--limit", type=int, help="only the first N images of the split")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="noise fill and bootstrap")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--manifest",
        type=Path,
        help="region masks for the run's images (e.g. the manifest `saliency regions` wrote), "
        "matched by path; no retraining needed",
    )
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.cli.chance import warn_if_at_chance
    from saliency.cli.progress import bar
    from saliency.stages import ablate

    warn_if_at_chance(args.run)
    regions = list(REGIONS) if args.region == "all" else [args.region]
    cfg = ablate.AblationConfig(
        split=args.split, regions=regions, fill=args.fill, mode=args.mode,
        batch_size=args.batch_size, seed=args.seed, limit=args.limit,
        groups=args.group or ["all"], protect=args.protect, fill_on=args.fill_on,
        manifest=str(args.manifest) if args.manifest else None,
    )  # fmt: skip
    with bar(0, f"ablate {args.split}") as progress:
        res = ablate.run(args.run, cfg, args.device, args.workers, progress.update)
    report(res, cfg)
    return 0


def report(res, cfg) -> None:
    """Print an ablate stage's result: empty regions, skipped images, rankings."""
    for region in res.empty_regions:
        print(f"warning: {region} has zero area in every image; nothing was filled")
    n = res.new.drop_duplicates("path").shape[0]
    print(f"{n} images x {len(cfg.regions)} region(s), {cfg.mode} with {cfg.fill} fill")
    if len(res.skipped):
        print(f"skipped {len(res.skipped)} image(s) (reasons in skipped.csv)")
    for g, t in res.rankings.items():
        print_ranking(g, t)


def print_ranking(group: str, table: pd.DataFrame) -> None:
    """Print one selection's ablation ranking (``ranking`` of the ablation summary)."""
    from saliency.analysis.recovered import ablation_leader

    if not len(table):
        print(f"{group}: no images with these regions; nothing to rank")
        return
    effect = [
        f"{e:+.3f} [{-h:+.3f}, {-lo:+.3f}]"
        for e, lo, h in zip(
            table["effect"], table["prob_change_low"], table["prob_change_high"], strict=True
        )
    ]
    columns = ["region", "n", "effect", "excludes_zero", "accuracy_change", "flip_rate", "p_holm"]
    shown = table.assign(effect=effect)[columns]
    lead = ablation_leader(list(table["region"]), table["effect"], -table["prob_change_high"])
    print(f"{group}: regions by drop of the true class's probability (95% bootstrap interval)")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"  ablation criterion met by: {lead or 'no region'}")
