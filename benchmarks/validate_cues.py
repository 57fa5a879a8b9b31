"""Issue 19's end-to-end table: does each method recover the planted cue under the lift
definition, and under the enrichment definition it replaced? Does the null recover nothing?

Per cue and training seed: a synthetic data set with only that cue planted (data seed 1),
`saliency train` with its defaults at ``--size`` (only the manifest, size and seed given),
then evaluate, explain (cam, gradcam, ig with a blur baseline), ablate (six regions, blur),
null (the run's recipe on shuffled labels; ``--null-epochs`` caps it, and the table says
so), and validate. Finished steps are skipped, so an interrupted benchmark continues.

    .venv/bin/python benchmarks/validate_cues.py --out /tmp/validate --size 96 --n 800
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from saliency.cli import main as cli
from saliency.data.synth.config import SynthConfig
from saliency.data.synth.generate import generate


def step(done: Path, argv: list[str]) -> None:
    """Run one command unless its marker exists."""
    if done.exists():
        return
    print("+ saliency " + " ".join(argv), flush=True)
    assert cli(argv) == 0, argv
    done.parent.mkdir(parents=True, exist_ok=True)
    done.touch()


def one(data: Path, run: Path, size: int, seed: int, args) -> list[dict]:
    r, w = ["--run", str(run)], ["--workers", str(args.workers), "--device", args.device]
    marks = run / ".bench"
    train = ["train", "--manifest", str(data / "manifest.csv"), "--out", str(run),
             "--size", str(size), "--seed", str(seed), *w]  # fmt: skip
    if (run / "checkpoints" / "last.pt").is_file() and not (marks / "train").exists():
        train = ["train", "--resume", "--out", str(run), *w]
    step(marks / "train", train)
    step(marks / "evaluate", ["evaluate", *r, *w])
    step(marks / "explain", ["explain", *r, "--methods", "cam,gradcam,ig",
                             "--ig-baseline", "blur", *w])  # fmt: skip
    step(marks / "ablate", ["ablate", *r, *w])
    null = ["null", *r, *w] + (["--epochs", str(args.null_epochs)] if args.null_epochs else [])
    step(marks / "null", null)
    step(marks / "validate", ["validate", *r, *w, "--bootstrap", str(args.bootstrap)])
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    null_metrics = json.loads((run / "null" / "eval" / "test" / "metrics.json").read_text())
    v = pd.read_csv(run / "validation" / "verdicts.csv", keep_default_na=False)
    lift = pd.read_csv(run / "validation" / "lift.csv", keep_default_na=False)
    lift = lift[lift["reference"] == "null"].set_index(["method", "region"])
    rows = []
    for rec in v.to_dict("records"):
        m, cue = rec["method"], rec["planted"]
        lam = lift.loc[(m, cue)] if (m, cue) in lift.index else None
        rows.append({
            "seed": seed, "method": m, "accuracy": metrics["accuracy"]["all"]["value"],
            "null_accuracy": null_metrics["accuracy"]["all"]["value"],
            "recovered": rec["recovered"] or "none", "old": rec["recovered_old"] or "none",
            "null_recovered": rec.get("null_recovered", "") or "none",
            "ablation_leader": rec["ablation_leader"] or "none",
            "lift_leader": rec["lift_leader"] or "none", "verdict": rec["verdict"],
            "lambda": None if lam is None else lam["lambda"],
            "lambda_low": None if lam is None else lam["lambda_low"],
            "lambda_high": None if lam is None else lam["lambda_high"],
            "randomization": rec.get("randomization_passed"), "curves": rec.get("curves_passed"),
        })  # fmt: skip
    return rows


def markdown(t: pd.DataFrame) -> str:
    lines = [
        "| cue | seed | test acc. (null) | method | recovered (new) | lambda of the cue [95%] "
        "| old definition | null recovers | randomization | deletion/insertion |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in t.itertuples():
        lam = (
            "-"
            if pd.isna(r.lambda_)
            else f"{r.lambda_:+.2f} [{r.lambda_low:+.2f}, {r.lambda_high:+.2f}]"
        )
        verdict = r.recovered if r.verdict == "judged" else f"- ({r.verdict})"
        lines.append(
            f"| {r.cue} | {r.seed} | {r.accuracy:.1%} ({r.null_accuracy:.1%}) | {r.method} | "
            f"{verdict} | {lam} | {r.old} | {r.null_recovered} | "
            f"{'pass' if r.randomization else 'fail'} | {'pass' if r.curves else 'fail'} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--cues", default="nose,brows,hair")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n", type=int, default=800, help="faces per cue (70/15/15 split)")
    ap.add_argument("--null-epochs", type=int, help="cap the null's epochs (default: recipe)")
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:  # every cue once before more seeds
        for cue in args.cues.split(","):
            data = args.out / f"{cue}{args.size}" / "data"
            if not (data / "manifest.csv").is_file():
                generate(SynthConfig(n=args.n, size=args.size, seed=1, cues={cue: 1.0}), data)
            run = args.out / f"{cue}{args.size}" / f"run_s{seed}"
            rows += [{"cue": cue, **r} for r in one(data, run, args.size, seed, args)]
            table = pd.DataFrame(rows).rename(columns={"lambda": "lambda_"})
            table.to_csv(args.out / "validate_cues.csv", index=False)
            print(markdown(table), flush=True)


if __name__ == "__main__":
    main()
