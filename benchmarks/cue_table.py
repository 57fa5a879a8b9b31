"""One row per planted-cue run: training, test accuracy, ablation and share verdicts.

Reads what ``benchmarks/cue_validation.sh`` leaves in each run folder (``train_log.csv``,
``eval/test/metrics.json``, ``ablation/ranking_blur_delete.csv``,
``share/<method>_test/summary.csv`` and ``agreement/<method>_test.csv``) and prints, per run
and method, the two regions with the highest enrichment (estimate and lower bound) and the
verdict of ``saliency.analysis.recovered``. A run whose files are missing is listed with what
is missing.

    .venv/bin/python benchmarks/cue_table.py /tmp/val/hair/run_s0 /tmp/val/hair/run_s1 ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

METHODS = ("cam", "gradcam", "ig")


def overall(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["split"] == "all") & (df["selection"] == "all")]


def describe(run: Path) -> list[str]:
    log = pd.read_csv(run / "train_log.csv")
    best = log.loc[log["val_loss"].idxmin()]
    acc = json.loads((run / "eval/test/metrics.json").read_text())["accuracy"]["all"]["value"]
    rank = pd.read_csv(run / "ablation/ranking_blur_delete.csv")
    rank = rank[rank["selection"] == "all"].sort_values("effect", ascending=False)
    top = rank.iloc[0]
    lines = [
        f"{run}: {len(log)} epochs, best {int(best['epoch'])}, test accuracy {acc:.3f}; "
        f"ablation leader {top['region']} {top['effect']:+.3f} "
        f"(interval excludes 0: {bool(top['excludes_zero'])}), next {rank.iloc[1]['region']} "
        f"{rank.iloc[1]['effect']:+.3f}"
    ]
    for method in METHODS:
        folder = run / "share" / f"{method}_test"
        s = overall(pd.read_csv(folder / "summary.csv")).sort_values("enrichment", ascending=False)
        agreement = pd.read_csv(run / "agreement" / f"{method}_test.csv")
        verdict = overall(agreement).iloc[0]["recovered"]
        verdict = verdict if isinstance(verdict, str) and verdict else "nothing"
        lead = ", ".join(
            f"{r.region} {r.enrichment:.2f} [{r.enrichment_low:.2f}]"
            for r in s.head(2).itertuples()
        )
        lines.append(f"  {method:8s} recovered: {verdict:8s} enrichment {lead}")
    return lines


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for arg in sys.argv[1:]:
        try:
            print("\n".join(describe(Path(arg))))
        except (FileNotFoundError, KeyError, IndexError) as exc:
            print(f"{arg}: incomplete ({exc})")


if __name__ == "__main__":
    main()
