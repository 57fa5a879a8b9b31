"""``saliency ablate``: fill facial regions and measure how the model's output changes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from saliency.analysis.names import FILL_PLACES, MODES
from saliency.data.regions import REGIONS
from saliency.faces.names import FILLS

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
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from saliency.analysis.ablation import AblationConfig, ablate_run
    from saliency.analysis.ablation_store import merged, result_dir, store
    from saliency.analysis.ablation_summary import ranking, summarize
    from saliency.cli.chance import warn_if_at_chance
    from saliency.cli.progress import bar
    from saliency.data.atomic import atomic_write_text
    from saliency.models.checkpoint import file_sha256
    from saliency.rundir import best_checkpoint, record, require_run
    from saliency.runtime import resolve_device

    run_dir = require_run(args.run)
    warn_if_at_chance(run_dir)
    regions = list(REGIONS) if args.region == "all" else [args.region]
    groups = args.group or ["all"]
    cfg = AblationConfig(
        split=args.split, regions=regions, fill=args.fill, mode=args.mode,
        batch_size=args.batch_size, seed=args.seed, limit=args.limit, groups=groups,
        protect=args.protect, fill_on=args.fill_on,
    )  # fmt: skip
    with bar(0, f"ablate {args.split}") as progress:
        new, skipped, classes = ablate_run(
            run_dir, cfg, resolve_device(args.device), args.workers, progress.update
        )
    settings = {
        "checkpoint_sha256": file_sha256(best_checkpoint(run_dir)),
        "split": args.split, "fill": args.fill, "mode": args.mode, "seed": args.seed,
        "protect": args.protect,
    }  # fmt: skip
    per = pd.concat(
        [merged(result_dir(run_dir, r, args.fill, args.mode), new[new["region"] == r], settings)
         for r in regions], ignore_index=True,
    )  # fmt: skip
    summary = summarize(per, classes, seed=args.seed)
    from saliency.viz.ablation import distributions_figure
    from saliency.viz.style import save_figure

    for region in regions:
        out = result_dir(run_dir, region, args.fill, args.mode)
        rows = per[per["region"] == region]
        store(out, rows, settings)
        atomic_write_text(
            out / "summary.csv",
            summary[summary["region"] == region].to_csv(index=False, float_format="%.5g"),
        )
        atomic_write_text(out / "skipped.csv", skipped.to_csv(index=False))
        save_figure(distributions_figure(rows, f"{region}: {args.mode} with {args.fill}"),
                    out / "distributions.png")  # fmt: skip
        if (rows["region_area"] == 0).all():
            print(f"warning: {region} has zero area in every image; nothing was filled")
    tables = [ranking(summary, g).assign(selection=g) for g in groups]
    table = pd.concat(tables, ignore_index=True)
    atomic_write_text(
        run_dir / "ablation" / f"ranking_{args.fill}_{args.mode}.csv",
        table.to_csv(index=False, float_format="%.5g"),
    )
    record(run_dir, f"ablate:{args.split}", cfg.to_dict())
    n = new.drop_duplicates("path").shape[0]
    print(f"{n} images x {len(regions)} region(s), {args.mode} with {args.fill} fill")
    if len(skipped):
        print(f"skipped {len(skipped)} image(s) (reasons in skipped.csv)")
    for g, t in zip(groups, tables, strict=True):
        _print_ranking(g, t)
    if args.mode == "delete" and len(regions) >= 3:
        _agreement(run_dir, args, groups, classes)
    return 0


def _print_ranking(group: str, table: pd.DataFrame) -> None:
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


def _agreement(run_dir: Path, args: argparse.Namespace, groups: list[str], classes) -> None:
    """Rank agreement with every method's stored shares of the same split, when present."""
    import pandas as pd

    from saliency.analysis.recovered import judged
    from saliency.analysis.region_evidence import ablation_drops
    from saliency.analysis.selection import Selection
    from saliency.analysis.share_summary import summarize_shares
    from saliency.data.atomic import atomic_write_text

    drops = ablation_drops(run_dir, args.fill)
    if drops is None:
        return
    rows = []
    for f in sorted((run_dir / "share").glob(f"*_{args.split}/per_image.csv")):
        method = f.parent.name[: -len(args.split) - 1]
        meta_file = run_dir / "saliency" / args.split / method / "meta.json"
        if not meta_file.is_file():
            continue
        share = pd.read_csv(f, keep_default_na=False)
        sels = [Selection("all", g) for g in groups]
        t = summarize_shares(
            share, classes, sels, {args.fill: drops}, judged(json.loads(meta_file.read_text())),
            seed=args.seed,
        ).agreement  # fmt: skip
        rows += [t.assign(method=method)] if len(t) else []
    if not rows:
        return
    table = pd.concat(rows, ignore_index=True)
    atomic_write_text(
        run_dir / "ablation" / f"agreement_{args.fill}.csv",
        table.to_csv(index=False, float_format="%.5g"),
    )
    print("agreement with attribution share (Spearman across regions, 95% interval):")
    for _, r in table.iterrows():
        verdict = f"recovered: {r['recovered']}" if r["recovered"] else "nothing recovered"
        print(
            f"  {r['method']}, {r['selection']} (n = {r['n']}): {r['spearman']:.2f} "
            f"[{r['spearman_low']:.2f}, {r['spearman_high']:.2f}]; share leader "
            f"{r['share_leader'] or 'none'}; {verdict}"
        )
