"""``saliency align``: detect, landmark and align faces to the canonical crop."""

from __future__ import annotations

import argparse
from pathlib import Path

from saliency.faces.names import BACKENDS, POLICIES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "align",
        help="detect, landmark and align faces to the canonical crop",
        description="Writes OUT/images, OUT/manifest.csv (landmarks in aligned coordinates), "
        "OUT/skipped.csv (a reason per skipped row) and OUT/align_rates.csv (skip rates per "
        "subgroup, class and cell).",
    )
    p.add_argument("--manifest", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--backend", choices=BACKENDS, default="dlib")
    p.add_argument("--size", type=int, default=128, help="side of the aligned crop in px")
    p.add_argument(
        "--multiple",
        choices=POLICIES,
        default="largest",
        help="several faces in an image: keep the largest (default) or skip the image",
    )
    p.add_argument("--upsample", type=int, help="dlib pyramid doublings (default: by size)")
    p.add_argument("--predictor", help="dlib's shape_predictor_68_face_landmarks.dat")
    p.add_argument("--device", default="cpu", help="for --backend fan")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.cli.progress import bar
    from saliency.data.manifest import read_manifest
    from saliency.stages.align import AlignConfig, align_manifest

    cfg = AlignConfig(
        manifest=str(args.manifest),
        out=str(args.out),
        backend=args.backend,
        size=args.size,
        multiple=args.multiple,
        upsample=args.upsample,
        predictor=args.predictor,
        device=args.device,
        workers=args.workers,
    )
    n = len(read_manifest(args.manifest))
    with bar(n, "align") as progress:
        res = align_manifest(cfg, progress.update)
    return report(res, cfg)


def report(res, cfg) -> int:
    """Print an align stage's result: counts, speed, skip reasons, skip rate per cell."""
    print(
        f"aligned {res.aligned} of {res.n} images ({cfg.backend}, {cfg.size} px) in "
        f"{res.seconds:.1f} s ({res.n / max(res.seconds, 1e-9):.1f} img/s) -> {res.manifest}"
    )
    if res.several:
        print(f"{res.several} image(s) had several faces: kept the largest (faces_found column)")
    if len(res.skipped):
        print(f"skipped {len(res.skipped)} (reasons in {Path(cfg.out) / 'skipped.csv'}):")
        for reason, count in res.skipped["reason"].str.split(":").str[0].value_counts().items():
            print(f"  {count:6d}  {reason}")
    table = res.rates.copy()
    table["skip_rate"] = [
        f"{r:6.1%} [{lo:.1%}, {hi:.1%}]" if r == r else "-"
        for r, lo, hi in zip(table["skip_rate"], table["ci_low"], table["ci_high"], strict=True)
    ]
    print(table[["selection", "n", "aligned", "skip_rate"]].to_string(index=False))
    return 0
