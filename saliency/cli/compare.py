"""``saliency compare``: one table across runs and architectures (accuracy, cells, speed).

Per run: the evaluated split's accuracy, loss and cells, speed, and the train and validation
loss and accuracy at the best epoch (empty for an adopted model). Runs of one recipe that
differ only in their seed form a group, with mean and sd over its runs (the rule:
:mod:`saliency.analysis.compare_table`). ``--out T.csv`` writes the per-run CSV, the groups'
``T_groups.csv``, and ``T.md`` / ``T.tex`` (booktabs): runs, then groups as ``mean ± sd``.
"""

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
    c.add_argument("--out", type=Path,
                   help="per-run CSV to write; beside it STEM_groups.csv (mean and sd per "
                   "recipe over seeds), STEM.md and STEM.tex (default: print only)")  # fmt: skip
    c.set_defaults(func=run_compare)


def inference_ms(model, hw: tuple[int, int], batch: int = 32, repeats: int = 3) -> float:
    """Median milliseconds per image of a forward pass on random ``[batch, 3, *hw]`` input
    (on the model's device)."""
    import torch

    device = next(model.parameters()).device
    x = torch.randn(batch, 3, *hw, device=device)
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

    from saliency.analysis.compare_table import (
        best_epoch_numbers,
        group_table,
        paper_table,
        recipe_key,
    )
    from saliency.analysis.tables import to_latex, to_markdown
    from saliency.atomic import atomic_write_text
    from saliency.data.manifest import SPLITS
    from saliency.models.checkpoint import load_model
    from saliency.models.evaluate import count_parameters
    from saliency.rundir import best_checkpoint, eval_dir, require_run, train_log

    if args.out is not None and args.out.suffix.lower() in (".md", ".tex"):
        raise ValueError(
            f"--out names the CSV (e.g. {args.out.with_suffix('.csv')}); "
            "the .md and .tex are written beside it"
        )
    rows = []
    for run in args.runs:
        require_run(run)
        model, pre, _, ckpt = load_model(best_checkpoint(run))
        metrics_path = eval_dir(run, args.split) / "metrics.json"
        if not metrics_path.is_file():
            have = sorted(p.parent.name for p in eval_dir(run).glob("*/metrics.json"))
            make = f"saliency evaluate --run {run} --split {args.split}"
            if args.split not in (*SPLITS, "all"):  # a named set
                make = f"saliency evaluate --run {run} --manifest M --name {args.split}"
            raise FileNotFoundError(
                f"{run} has no evaluation {args.split!r} (it has: {', '.join(have) or 'none'}); "
                f"run `{make}` first"
            )
        metrics = json.loads(metrics_path.read_text())
        with torch.inference_mode():
            grid = model.forward_features(torch.zeros(1, 3, *pre.hw)).shape[2:]
        log = pd.read_csv(train_log(run)) if train_log(run).is_file() else None
        row = {
            "run": str(run),
            "recipe": recipe_key(ckpt.train_config, ckpt.data.sha256),
            "seed": ckpt.seed,
            "arch": ckpt.arch,
            "output_stride": ckpt.output_stride,
            "parameters": count_parameters(model),
            "size": pre.text.removesuffix(" px"),
            "grid": f"{grid[0]}x{grid[1]}",
            "epoch": ckpt.epoch,
            **best_epoch_numbers(log, ckpt.epoch if log is not None else None, train_log(run)),
            "accuracy": metrics["accuracy"]["all"]["value"],
            "loss": metrics["loss"],
            "ms_per_image": round(inference_ms(model, pre.hw), 3),
        }
        for name, v in metrics["accuracy"].items():
            if v["kind"] == "cell":
                row[name] = v["value"]
        rows.append(row)
    table = pd.DataFrame(rows)
    groups = group_table(table)
    if args.out:
        paper = paper_table(table, groups, args.split)
        caption = (
            f"Runs on the {args.split} split, with train and validation numbers at the best "
            "epoch; groups: runs of one recipe over seeds, mean ± sample sd."
        )
        out = args.out
        groups_csv = out.with_name(f"{out.stem}_groups{out.suffix or '.csv'}")
        atomic_write_text(out, table.to_csv(index=False))
        atomic_write_text(groups_csv, groups.to_csv(index=False))
        atomic_write_text(out.with_suffix(".md"), to_markdown(paper))
        atomic_write_text(out.with_suffix(".tex"), to_latex(paper, caption))
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print("\ngroups (runs differing only in seed; mean and sample sd):")
        print(groups.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0
