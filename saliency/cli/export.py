"""``saliency export``: the run's model as ONNX or a torch.export program, checked."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write the run's model as ONNX or torch.export (pt2), checked against PyTorch",
        description="The exported graph takes the normalized input [N, 3, S, S] and returns "
        "the logits; FILE.preprocessing.json beside it holds the preprocessing and classes.",
    )
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--format", choices=("onnx", "pt2"), default="onnx")
    p.add_argument("--out", type=Path, help="file to write (default RUN/export/model.FORMAT)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.stages import export

    cfg = export.ExportConfig(str(args.run), args.format, str(args.out) if args.out else None)
    res = export.run(cfg)
    print(f"{args.format} -> {res.path}")
    print(f"preprocessing -> {res.preprocessing}")
    print(
        f"checked on {res.source}: max abs difference of the logits {res.max_abs_difference:.2g}"
        f" (< {export.TOLERANCE:g})"
    )
    return 0
