"""Issue 34's table: which IG baseline should be the default? Every baseline on the planted
cues, judged by what a user relies on: recovered (the rule of analysis/recovered.py, with the
null that must be silent), the cascading randomization check, and completeness.

Per cue and training seed: a synthetic data set with only that cue planted (data seed 9, the
planted-cue test's), `saliency train` by the planted-cue recipe (``--epochs`` epochs, batch
32, output stride 16, lr 3e-4), evaluate, ablate (six regions, blur, delete), `saliency null`
(the run's recipe on shuffled labels; it stops on validation loss), then per baseline:
explain ig (the adaptive default, ``--limit`` test images) with that baseline, the null
explained the same way, and `saliency validate` (floor on, so the null's own verdict is
measured). Finished steps are skipped, so an interrupted benchmark continues.

    .venv/bin/python benchmarks/ig_baselines.py --out /tmp/igb --size 64
    .venv/bin/python benchmarks/ig_baselines.py --out /tmp/igb --size 96   # then both sizes

Writes ``OUT/ig_baselines.csv`` (one row per cue, seed, size and baseline) and prints the
per-baseline summary (recovered, randomization passed, median completeness error) as
Markdown: the README's table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import pandas as pd

from saliency.cli import main as cli
from saliency.data.synth.config import SynthConfig
from saliency.data.synth.generate import generate

BASELINES = ("black", "blur", "mean", "noise")


def step(done: Path, argv: list[str]) -> float:
    """Run one command unless its marker exists; returns its seconds (0 when skipped)."""
    if done.exists():
        return 0.0
    print("+ saliency " + " ".join(argv), flush=True)
    start = time.perf_counter()
    assert cli(argv) == 0, argv
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(f"{time.perf_counter() - start:.1f}")
    return time.perf_counter() - start


def prepared(data: Path, run: Path, size: int, seed: int, args) -> None:
    """Train, evaluate, ablate and train the null (each once)."""
    r, w = ["--run", str(run)], ["--workers", str(args.workers), "--device", args.device]
    marks = run / ".bench"
    step(marks / "train", ["train", "--manifest", str(data / "manifest.csv"), "--out", str(run),
                           "--size", str(size), "--seed", str(seed), "--epochs", str(args.epochs),
                           "--batch-size", "32", "--lr", "3e-4", *w])  # fmt: skip
    step(marks / "evaluate", ["evaluate", *r, *w])
    step(marks / "ablate", ["ablate", *r, *w])
    step(marks / "null", ["null", *r, *w])


def one_baseline(run: Path, baseline: str, args) -> dict:
    """Explain ig with ``baseline`` (the null too), validate; the row of the table."""
    from saliency.stages.null import NullConfig, analyse_null

    r, w = ["--run", str(run)], ["--workers", str(args.workers), "--device", args.device]
    marks, keep = run / ".bench", run / "baselines" / baseline
    if not (marks / f"validate_{baseline}").exists():
        for m in marks.glob("explain_*"):  # the maps on disk are another baseline's
            m.unlink()
    seconds = step(marks / f"explain_{baseline}", [
        "explain", *r, *w, "--methods", "ig", "--ig-baseline", baseline, "--limit",
        str(args.limit), "--overwrite"])  # fmt: skip
    if not (marks / f"validate_{baseline}").exists():
        start = time.perf_counter()
        analyse_null(NullConfig(run, workers=args.workers, device=args.device))
        seconds += time.perf_counter() - start
    seconds += step(marks / f"validate_{baseline}", [
        "validate", *r, *w, "--methods", "ig", "--bootstrap", str(args.bootstrap),
        "--randomization-images", str(args.randomization_images),
        "--curve-images", str(args.curve_images)])  # fmt: skip
    if not (keep / "verdicts.csv").is_file():
        keep.mkdir(parents=True, exist_ok=True)
        for f in ("verdicts.csv", "randomization_verdicts.csv"):
            if (run / "validation" / f).is_file():
                shutil.copy(run / "validation" / f, keep / f)
        shutil.copy(run / "saliency" / "test" / "ig" / "index.csv", keep / "index.csv")
    v = pd.read_csv(keep / "verdicts.csv", keep_default_na=False).set_index("method").loc["ig"]
    rz = keep / "randomization_verdicts.csv"
    passed = None
    if rz.is_file():
        t = pd.read_csv(rz, keep_default_na=False)
        t = t[t["method"] == "ig"]
        passed = bool(t["passed"].iloc[0]) if len(t) else None
    index = pd.read_csv(keep / "index.csv")
    return {
        "baseline": baseline, "recovered": v["recovered"] or "none",
        "correct": v["recovered"] == v["planted"],
        "withheld": v.get("withheld", "") or "", "null_recovered": v.get("null_recovered", ""),
        "ablation_leader": v["ablation_leader"] or "none",
        "lift_leader": v["lift_leader"] or "none", "randomization_passed": passed,
        "completeness_error_median": float(index["ig_error"].median()),
        "completeness_error_max": float(index["ig_error"].max()),
        "points_mean": float(index["ig_steps"].mean()), "capped": int(index["ig_capped"].sum()),
        "seconds": round(seconds, 1),
    }  # fmt: skip


def summary(t: pd.DataFrame) -> pd.DataFrame:
    """Per baseline: runs recovered (of all), randomization passed, completeness."""
    g = t.groupby("baseline", sort=False)
    out = pd.DataFrame({
        "runs": g.size(), "recovered": g["correct"].sum(),
        "withheld": g["withheld"].apply(lambda s: int((s.fillna("") != "").sum())),
        "randomization_passed": g["randomization_passed"].sum(),
        "completeness_error_median": g["completeness_error_median"].median(),
        "points_mean": g["points_mean"].mean(), "cpu_seconds": g["seconds"].sum(),
    })  # fmt: skip
    key = ["recovered", "randomization_passed"]
    out["rank_key"] = -out["completeness_error_median"]
    return out.sort_values([*key, "rank_key"], ascending=False).drop(columns="rank_key")


def markdown(s: pd.DataFrame) -> str:
    lines = ["| baseline | recovered the planted cue | verdict withheld (null not silent) "
             "| randomization passed | completeness error (median) | path points (mean) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for b, r in s.iterrows():
        lines.append(f"| {b} | {int(r.recovered)} of {int(r.runs)} | {int(r.withheld)} | "
                     f"{int(r.randomization_passed)} of {int(r.runs)} | "
                     f"{r.completeness_error_median:.2%} | {r.points_mean:.0f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--cues", default="nose,brows,hair")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--baselines", default=",".join(BASELINES))
    ap.add_argument("--n", type=int, default=1000, help="faces per cue (70/15/15 split)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--limit", type=int, default=64, help="test images explained")
    ap.add_argument("--randomization-images", type=int, default=8)
    ap.add_argument("--curve-images", type=int, default=16)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    out_csv = args.out / "ig_baselines.csv"
    old = pd.read_csv(out_csv, keep_default_na=False) if out_csv.is_file() else None
    rows = [] if old is None else old.to_dict("records")
    done = {(r["cue"], r["seed"], r["size"], r["baseline"]) for r in rows}
    for seed in [int(s) for s in args.seeds.split(",")]:  # every cue once before more seeds
        for cue in args.cues.split(","):
            data = args.out / f"{cue}{args.size}" / "data"
            if not (data / "manifest.csv").is_file():
                cfg = SynthConfig(n=args.n, size=args.size, seed=9, cues={cue: 1.0})
                generate(cfg, data)
            run = args.out / f"{cue}{args.size}" / f"run_s{seed}"
            prepared(data, run, args.size, seed, args)
            acc = json.loads((run / "eval" / "test" / "metrics.json").read_text())
            for b in args.baselines.split(","):
                if (cue, seed, args.size, b) in done:
                    continue
                row = {"cue": cue, "seed": seed, "size": args.size,
                       "accuracy": acc["accuracy"]["all"]["value"],
                       **one_baseline(run, b, args)}  # fmt: skip
                rows.append(row)
                pd.DataFrame(rows).to_csv(out_csv, index=False)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False), flush=True)
    print(markdown(summary(table)), flush=True)


if __name__ == "__main__":
    main()
