"""``saliency evaluate`` and ``saliency compare``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="predictions and metrics per class, subgroup and cell")
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--split", default="test", help="train, val, test or all (default test)")
    p.add_argument("--manifest", type=Path, help="evaluate another manifest (default: training)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run_evaluate)

    c = sub.add_parser("compare", help="one table across runs and architectures")
    c.add_argument("runs", nargs="+", type=Path)
    c.add_argument("--split", default="test")
    c.add_argument("--out", type=Path, help="CSV to write (default: print only)")
    c.set_defaults(func=run_compare)


def print_table(table: pd.DataFrame, metrics: dict) -> None:
    import pandas as pd

    print(f"{'selection':>14s} {'n':>6s} {'accuracy':>9s}   95% CI")
    for r in table.itertuples():
        acc = "-" if r.accuracy is None or pd.isna(r.accuracy) else f"{r.accuracy:.1%}"
        ci = "" if pd.isna(r.ci_low) else f"[{r.ci_low:.1%}, {r.ci_high:.1%}]"
        print(f"{r.selection:>14s} {r.n:6d} {acc:>9s}   {ci}")
    hard = metrics["hardest_cell"]
    if hard:
        gap = next(g for g in metrics["gaps"] if g["a"] == hard and g["b"] == "rest")
        if gap["difference"] is not None:
            verdict = "excludes 0: the gap is real" if gap["excludes_zero"] else "includes 0"
            print(
                f"hardest cell {hard}: {gap['difference']:+.1%} vs the rest, 95% CI "
                f"[{gap['ci'][0]:+.1%}, {gap['ci'][1]:+.1%}] ({verdict})"
            )


def run_evaluate(args: argparse.Namespace) -> int:
    from saliency.cli.progress import bar
    from saliency.stages import evaluate

    cfg = evaluate.EvaluateConfig(
        args.run, args.split, args.manifest, args.batch_size, args.workers, args.device
    )
    with bar(0, f"evaluate {args.split}") as progress:
        res = evaluate.run(cfg, progress.update)
    report(res, args.split)
    return 0


def report(res, split: str) -> None:
    """Print an evaluate stage's result: the headline, the table, the chance warning."""
    m = res.metrics
    print(
        f"{split}: {len(res.predictions)} images, loss {m['loss']:.4f}, ROC AUC "
        f"{m['roc_auc']['all'] or float('nan'):.3f}, ECE {m['calibration']['ece']:.3f} "
        f"-> {res.out}"
    )
    print_table(res.table, m)
    if res.chance_warning:
        print(f"warning: {res.chance_warning}")


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
            raise FileNotFoundError(
                f"{metrics_path} missing; run `saliency evaluate --run {run}"
                f" --split {args.split}` first"
            )
        metrics = json.loads(metrics_path.read_text())
        with torch.inference_mode():
            grid = model.forward_features(torch.zeros(1, 3, pre.size, pre.size)).shape[2:]
        row = {
            "run": str(run),
            "arch": ckpt["model"]["arch"],
            "output_stride": ckpt["model"]["output_stride"],
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
