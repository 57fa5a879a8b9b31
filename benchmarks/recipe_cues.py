"""Does the default training recipe learn every planted cue? One row per cue and input size,
one column per training seed: test accuracy with its 95% Wilson interval, the best epoch and
the epochs run, all with `saliency train`'s defaults (only the manifest, size and seed given).

A cue is learned on a seed when the test accuracy's interval lies above chance (the majority
class's share). Each cue gets its own data set (only that cue planted, data seed 1, rendered
at the training size); runs already finished are read back, so an interrupted benchmark
continues where it stopped.

    .venv/bin/python benchmarks/recipe_cues.py --out /tmp/recipe --sizes 64 --seeds 0,1,2
    .venv/bin/python benchmarks/recipe_cues.py --out /tmp/recipe --sizes 128 --seeds 0 --n 1200
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from saliency.cli import main as cli
from saliency.data.regions import REGIONS
from saliency.data.synth.config import SynthConfig
from saliency.data.synth.generate import generate
from saliency.models.recipe import TrainConfig
from saliency.models.train import Trainer


def one_run(data: Path, run: Path, size: int, seed: int, workers: int, device: str) -> dict:
    result = run / "recipe_result.json"
    if result.is_file():
        return json.loads(result.read_text())
    cfg = TrainConfig(
        manifest=str(data / "manifest.csv"),
        out=str(run),
        size=size,
        seed=seed,
        workers=workers,
        device=device,
    )
    trainer = Trainer(cfg, resume=(run / "checkpoints" / "last.pt").is_file())
    log = trainer.fit()  # a resumed run's log holds its earlier epochs too
    assert cli(["evaluate", "--run", str(run), "--workers", str(workers), "--device", device]) == 0
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    acc = metrics["accuracy"]["all"]
    best = min(log, key=lambda r: r["val_loss"])
    row = {
        "size": size, "seed": seed, "n_test": acc["n"], "accuracy": acc["value"],
        "low": acc["ci"][0], "high": acc["ci"][1], "chance": metrics["chance"]["level"],
        "learned": not metrics["chance"]["at_chance"], "best_epoch": best["epoch"],
        "epochs_run": len(log), "epochs_at_chance": sum(bool(r["val_at_chance"]) for r in log),
        "train_seconds": round(sum(r["seconds"] for r in log), 1), "lr": cfg.lr,
        "max_epochs": cfg.epochs,
    }  # fmt: skip
    result.write_text(json.dumps(row))
    return row


def markdown(table: pd.DataFrame) -> str:
    """The README's table: per cue and size, each seed's test accuracy [95% interval], best
    epoch / epochs run (epochs at chance), and how many seeds learned the cue."""
    lines = [
        "| cue | size | test accuracy per training seed [95% interval], best epoch / epochs "
        "run (epochs at chance) | learned |",
        "|---|---|---|---|",
    ]
    for (cue, size), t in table.groupby(["cue", "size"], sort=False):
        cells = [
            f"seed {r.seed}: {r.accuracy:.1%} [{r.low:.1%}, {r.high:.1%}], "
            f"{r.best_epoch}/{r.epochs_run} ({r.epochs_at_chance})"
            for r in t.sort_values("seed").itertuples()
        ]
        learned = f"{int(t['learned'].sum())} of {len(t)}"
        lines.append(f"| {cue} | {size} | " + "; ".join(cells) + f" | {learned} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sizes", default="64", help="comma separated, e.g. 64,128")
    ap.add_argument("--cues", default=",".join(REGIONS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n", type=int, default=1200, help="faces per cue (70/15/15 split)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for cue in args.cues.split(","):
            data = args.out / f"{cue}{size}" / "data"
            if not (data / "manifest.csv").is_file():
                generate(SynthConfig(n=args.n, size=size, seed=1, cues={cue: 1.0}), data)
            for seed in [int(s) for s in args.seeds.split(",")]:
                run = args.out / f"{cue}{size}" / f"run_s{seed}"
                row = {"cue": cue, **one_run(data, run, size, seed, args.workers, args.device)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                table = pd.DataFrame(rows)
                table.to_csv(args.out / "recipe_cues.csv", index=False)
    print(markdown(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
