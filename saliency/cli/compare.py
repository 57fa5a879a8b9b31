"""``saliency compare``: one table across runs and architectures (accuracy, cells, speed)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("compare", help="one table across runs and architectures")
    c.add_argument("runs", nargs="+", type=Path, help="run folders, each evaluated on --split")
    c.add_argument("--split", default="test",
                   help="the evaluated split or named set (default: test)")  # fmt: skip
    c.add_argument("--out", type=Path, help="CSV to write (default: print only)")
    c.set_defaults(func=run_compare)


def inference_ms(model, size: int, batch: int = 32, repeats: int = 3) -> float:
    """Median milliseconds per image of a forward pass on random input (CPU or the model's)."""
    import torch

    device = next(model.parameters()).device
    x = torch.randn(batch, 3, size, size, device=device)
    times = []
    with torch.inference_mode():
        model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - start) * 1000 / batch)
    return sorted(times)[len(times) // 2]


def run_compare(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch

    from saliency.atomic import atomic_write_text
    from saliency.models.checkpoint import load_model
    from saliency.models.evaluate import count_parameters
    from saliency.rundir import best_checkpoint, eval_dir, require_run

    rows = []
    for run in args.runs:
        require_run(run)
        model, pre, _, ckpt = load_model(best_checkpoint(run))
        metrics_path = eval_dir(run, args.split) / "metrics.json"
        if not metrics_path.is_file():
            have = sorted(p.parent.name for p in eval_dir(run).glob("*/metrics.json"))
            make = f"saliency evaluate --run {run} --split {args.split}"
            if args.split not in ("train", "val", "test", "all"):  # a named set
                make = f"saliency evaluate --run {run} --manifest M --name {args.split}"
            raise FileNotFoundError(
                f"{run} has no evaluation {args.split!r} (it has: {', '.join(have) or 'none'}); "
                f"run `{make}` first"
            )
        metrics = json.loads(metrics_path.read_text())
        with torch.inference_mode():
            grid = model.forward_features(torch.zeros(1, 3, pre.size, pre.size)).shape[2:]
        row = {
            "run": str(run),
            "arch": ckpt.arch,
            "output_stride": ckpt.output_stride,
            "parameters": count_parameters(model),
            "size": pre.size,
            "grid": f"{grid[0]}x{grid[1]}",
            "accuracy": metrics["accuracy"]["all"]["value"],
            "loss": metrics["loss"],
            "ms_per_image": round(inference_ms(model, pre.size), 3),
        }
        for name, v in metrics["accuracy"].items():
            if v["kind"] == "cell":
                row[name] = v["value"]
        rows.append(row)
    table = pd.DataFrame(rows)
    if args.out:
        atomic_write_text(args.out, table.to_csv(index=False))
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0
