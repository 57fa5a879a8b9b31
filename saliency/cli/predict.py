"""``saliency predict``: class and confidence for single images, optionally with a heatmap."""

from __future__ import annotations

import argparse
from pathlib import Path

from saliency.methods.names import available


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="class and confidence for single images (aligned crops)")
    p.add_argument("--run", required=True, type=Path, help="the run folder (required)")
    p.add_argument("images", nargs="+", type=Path, help="aligned face crops")
    p.add_argument("--explain", choices=available(), help="also write a heatmap overlay per image")
    p.add_argument("--out", type=Path, help="folder for the overlays (with --explain)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default: auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from saliency.cli.chance import warn_if_at_chance
    from saliency.methods.registry import explain_batch
    from saliency.models import outputs
    from saliency.models.checkpoint import load_model
    from saliency.models.preprocess import load_resized, to_unit
    from saliency.rundir import best_checkpoint, require_run
    from saliency.runtime import resolve_device
    from saliency.viz.figures import map_figure
    from saliency.viz.style import save_figure

    if args.explain and args.out is None:
        raise ValueError("--explain needs --out FOLDER for the overlays")
    run_dir = require_run(args.run)
    warn_if_at_chance(run_dir)
    model, pre, classes, _ = load_model(best_checkpoint(run_dir), resolve_device(args.device))
    for p in model.parameters():
        p.requires_grad_(False)
    device = next(model.parameters()).device
    batch = torch.from_numpy(np.stack([load_resized(p, pre) for p in args.images]))
    unit = to_unit(batch.to(device))
    methods = [args.explain] if args.explain else []  # none: the logits only
    res, target = explain_batch(model, unit, pre, methods, outputs.predicted)
    probs = outputs.probabilities(res.logits).cpu().numpy()
    width = max(len(str(p)) for p in args.images)
    for i, path in enumerate(args.images):
        k = int(target[i])
        line = f"{str(path):<{width}}  {classes[k]:>8s}  {probs[i, k]:.1%}"
        if args.explain:
            m = res.maps[args.explain][i].cpu().numpy()
            m = m / max(float(np.abs(m).max()), 1e-12)
            png = args.out / f"{path.stem}_{args.explain}.png"
            fig = map_figure(
                unit[i].permute(1, 2, 0).cpu().numpy(),
                m,
                f"{path.name}: {classes[k]} {probs[i, k]:.1%}",
                "model input",
                f"{args.explain} for {classes[k]} (/ max|m|)",
            )
            save_figure(fig, png, tight=False)
            line += f"  -> {png}"
        print(line)
    return 0
