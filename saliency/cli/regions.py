"""``saliency regions``: region masks (eyes, brows, nose, mouth, skin, hair) and a preview."""

from __future__ import annotations

import argparse
from pathlib import Path

from saliency.faces.names import SOURCES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "regions",
        help="region masks for every face of a manifest, and a preview sheet",
        description="Sources, best first: the generator's exact masks (synthetic), a BiSeNet "
        "face parser (parsing, with --parser-weights), 68-landmark polygons with a GrabCut hair "
        "estimate (landmarks). auto takes the best one available.",
    )
    p.add_argument("--manifest", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--source", choices=SOURCES, default="auto")
    p.add_argument("--parser-weights", help="face-parsing.PyTorch's 79999_iter.pth")
    p.add_argument("--device", default="cpu", help="for the parser")
    p.add_argument("--no-hair", action="store_true", help="landmarks: skip the hair estimate")
    p.add_argument("--preview", type=int, default=16, help="faces on the preview (0: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.cli.progress import bar
    from saliency.data.manifest import read_manifest
    from saliency.stages.regions import RegionsConfig, region_masks

    cfg = RegionsConfig(
        manifest=str(args.manifest),
        out=str(args.out),
        source=args.source,
        parser_weights=args.parser_weights,
        device=args.device,
        hair=not args.no_hair,
        preview=args.preview,
    )
    with bar(len(read_manifest(args.manifest)), "regions") as progress:
        res = region_masks(cfg, progress.update)
    return report(res, cfg)


def report(res, cfg) -> int:
    """Print a regions stage's result: counts, source, skip reasons, mean areas, preview."""
    print(
        f"region masks for {res.written} of {res.n} images from {res.source} in "
        f"{res.seconds:.1f} s -> {res.manifest}"
    )
    if len(res.skipped):
        print(f"skipped {len(res.skipped)} (reasons in {Path(cfg.out) / 'skipped.csv'}):")
        for reason, count in res.skipped["reason"].value_counts().items():
            print(f"  {count:6d}  {reason}")
    if len(res.areas):
        print(
            "mean area share: "
            + ", ".join(f"{k} {v:.1%}" for k, v in res.areas["mean_area"].items())
        )
    if res.preview:
        print(f"preview: {res.preview}")
    return 0
