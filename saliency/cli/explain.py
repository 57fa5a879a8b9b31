"""``saliency explain``: per-image maps for the chosen methods."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from saliency.methods.names import BASELINES, IG_METHODS, METHODS, RULES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="per-image maps (cam, gradcam family, ig)",
        description="Methods: " + ", ".join(METHODS) + ". Maps are raw "
        "(signed, unnormalized) at the model's input size.",
    )
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--split", default="test", help="train, val, test or all")
    p.add_argument(
        "--methods",
        help="comma separated (default cam,gradcam,ig; without cam for a model that is not "
        "CAM-ready)",
    )
    p.add_argument(
        "--target", default="predicted", help="predicted (default), true, or a class name"
    )
    p.add_argument("--limit", type=int, help="only the first N images of the split")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--ig-steps", type=int, default=32)
    p.add_argument("--ig-method", choices=IG_METHODS, default="gausslegendre")
    p.add_argument("--ig-baseline", choices=BASELINES, default="black")
    p.add_argument(
        "--ig-tolerance",
        type=float,
        default=0.05,
        help="warn when an image's completeness error exceeds this",
    )
    p.add_argument(
        "--upsample",
        choices=RULES,
        default=RULES[0],
        help="how grid maps (cam, gradcam family) reach input size: receptive-field "
        "(default: each cell at its measured receptive-field centre) or half-pixel (the "
        "image-resize rule of OpenCV and pytorch-grad-cam)",
    )
    p.add_argument(
        "--no-fold",
        action="store_true",
        help="run IG on the model as stored (captum's arithmetic to 1e-7) rather than its "
        "batch-norm-folded copy (about 1.4x faster on CPU; maps differ by float32 rounding)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the noise baseline")
    p.add_argument(
        "--manifest",
        type=Path,
        help="region masks for the run's images (e.g. the manifest `saliency regions` wrote), "
        "matched by path, for share and validate; no retraining needed",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--overwrite", action="store_true", help="replace maps made otherwise")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.cli.chance import warn_if_at_chance
    from saliency.cli.progress import bar
    from saliency.methods.registry import IGConfig
    from saliency.stages import explain
    from saliency.stages.explain_settings import default_methods

    warn_if_at_chance(args.run)
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",")]
    else:
        methods, note = default_methods(args.run)
        if note:
            print(f"note: {note}")
    ig = IGConfig(
        n_steps=args.ig_steps,
        method=args.ig_method,
        baseline=args.ig_baseline,
        seed=args.seed,
        tolerance=args.ig_tolerance,
    )
    cfg = explain.ExplainConfig(
        split=args.split,
        methods=methods,
        target=args.target,
        limit=args.limit,
        batch_size=args.batch_size,
        ig=ig,
        upsample=args.upsample,
        fold_bn=not args.no_fold,
        manifest=str(args.manifest) if args.manifest else None,
    )
    start = time.perf_counter()
    with bar(0, f"explain {args.split}") as progress:
        res = explain.run(args.run, cfg, args.device, args.workers, progress.update, args.overwrite)
    report(res, cfg, time.perf_counter() - start)
    return 0


def report(res, cfg, seconds: float) -> None:
    """Print an explain stage's result: what was done, warnings, IG completeness."""
    if res.n and res.resumed_from == res.n:
        print(f"all {res.n} maps of each method were already there (same settings): kept")
    elif res.resumed_from:
        print(f"resumed after {res.resumed_from} of {res.n} images")
    print(
        f"{res.n} images x {len(cfg.methods)} method(s) ({', '.join(cfg.methods)}), grid "
        f"{res.grid[0]}x{res.grid[1]}, in {seconds:.1f} s -> {res.out}"
    )
    for w in res.warnings:
        print(f"warning: {w}")
    if "ig" in cfg.methods and res.ig_over_tolerance:
        print(
            f"warning: {res.ig_over_tolerance} image(s) have an IG completeness error above "
            f"{cfg.ig.tolerance:.0%}; raise --ig-steps (see ig_error in index.csv)"
        )
