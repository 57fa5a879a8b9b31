"""``saliency ablate``: fill facial regions and measure how the model's output changes."""

from __future__ import annotations

import argparse
from pathlib import Path

from saliency.analysis.ablation import MODES, AblationConfig, ablate_run
from saliency.analysis.ablation_summary import ranking, summarize
from saliency.cli.progress import bar
from saliency.data.atomic import atomic_write_text
from saliency.data.regions import REGIONS
from saliency.faces.fill import FILLS
from saliency.models.train import resolve_device
from saliency.rundir import record, require_run


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
    p.add_argument("--limit", type=int, help="only the first N images of the split")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="noise fill and bootstrap")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_dir = require_run(args.run)
    regions = list(REGIONS) if args.region == "all" else [args.region]
    cfg = AblationConfig(
        split=args.split, regions=regions, fill=args.fill, mode=args.mode,
        batch_size=args.batch_size, seed=args.seed, limit=args.limit,
    )  # fmt: skip
    with bar(0, f"ablate {args.split}") as progress:
        per, skipped, classes = ablate_run(
            run_dir, cfg, resolve_device(args.device), args.workers, progress.update
        )
    summary = summarize(per, classes, seed=args.seed)
    from saliency.viz.ablation import distributions_figure
    from saliency.viz.style import save_figure

    for region in regions:
        out = run_dir / "ablation" / f"{region}_{args.fill}_{args.mode}"
        out.mkdir(parents=True, exist_ok=True)
        rows = per[per["region"] == region]
        atomic_write_text(out / "per_image.csv", rows.to_csv(index=False))
        atomic_write_text(
            out / "summary.csv",
            summary[summary["region"] == region].to_csv(index=False, float_format="%.5g"),
        )
        atomic_write_text(out / "skipped.csv", skipped.to_csv(index=False))
        save_figure(distributions_figure(rows, f"{region}: {args.mode} with {args.fill}"),
                    out / "distributions.png")  # fmt: skip
        if (rows["region_area"] == 0).all():
            print(f"warning: {region} has zero area in every image; nothing was filled")
    table = ranking(summary)
    atomic_write_text(
        run_dir / "ablation" / f"ranking_{args.fill}_{args.mode}.csv",
        table.to_csv(index=False, float_format="%.5g"),
    )
    record(run_dir, f"ablate:{args.split}", cfg.to_dict())
    n = per.drop_duplicates("path").shape[0]
    print(f"{n} images x {len(regions)} region(s), {args.mode} with {args.fill} fill")
    if len(skipped):
        print(f"skipped {len(skipped)} image(s) (reasons in skipped.csv)")
    effect = [
        f"{e:+.3f} [{-h:+.3f}, {-lo:+.3f}]"
        for e, lo, h in zip(
            table["effect"], table["prob_change_low"], table["prob_change_high"], strict=True
        )
    ]
    columns = ["region", "n", "effect", "excludes_zero", "accuracy_change", "flip_rate", "p_holm"]
    shown = table.assign(effect=effect)[columns]
    print("regions by drop of the true class's probability (95% bootstrap interval):")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0
