"""``saliency demo``: the study on built-in synthetic faces with planted cues.

Every stage that exists, in order, through :mod:`saliency.stages`: synth (brows cue, a hard
B_F cell that carries its own class's cue half the time) with its preview sheet, data
check, train (ResNet-18), evaluate per subgroup and cell, explain (cam, gradcam, ig),
average faces for every group and split with the incorrect-vs-correct and cell-vs-rest
contrasts, attribution share per region, region ablation, the agreement of the two region
answers, the publication figures and the HTML report. Stages already done are kept.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

STAGES = ("synth", "data check", "train", "evaluate", "explain", "average", "share", "ablate",
          "agreement", "figures", "report")  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole study on built-in synthetic faces")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    p.add_argument("--n", type=int, default=2000, help="number of synthetic faces")
    p.add_argument("--size", type=int, default=128, help="synthetic image side in px")
    p.add_argument("--train-size", type=int, default=64, help="model input side in px")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def _step(k: int, detail: str = "") -> None:
    print(f"[{k}/{len(STAGES)}] {STAGES[k - 1]}" + (f": {detail}" if detail else ""), flush=True)


def run(args: argparse.Namespace) -> int:
    from saliency.cli import ablate as ablate_cli
    from saliency.cli import agreement as agreement_cli
    from saliency.cli import average as average_cli
    from saliency.cli import evaluate as evaluate_cli
    from saliency.cli import explain as explain_cli
    from saliency.cli import figures as figures_cli
    from saliency.cli import share as share_cli
    from saliency.cli import synth as synth_cli
    from saliency.cli import train as train_cli
    from saliency.cli.data import report_check
    from saliency.cli.progress import bar
    from saliency.data.synth.config import SynthConfig
    from saliency.models.recipe import TrainConfig
    from saliency.rundir import best_checkpoint, saliency_dir
    from saliency.stages import (
        ablate,
        agreement,
        average,
        check,
        evaluate,
        explain,
        figures,
        report,
        share,
        synth,
        train,
    )

    data, run_dir = args.out / "data", args.out / "run"
    manifest = data / "manifest.csv"
    _step(1, f"{args.n} faces, brows cue, B_F carries its own cue half the time")
    if manifest.is_file():
        print(f"  {manifest} exists; keeping it")
    else:
        cfg = SynthConfig(
            n=args.n, size=args.size, seed=args.seed, cues={"brows": 1.0},
            cue_cells={"B_F": 0.5},
        )  # fmt: skip
        with bar(cfg.n, "synth") as progress:
            synth_cli.report(synth.run(cfg, data, None, True, progress.update), cfg)
    _step(2)
    if report_check(check.run(manifest)) != 0:
        return 1
    _step(3, f"resnet18 at {args.train_size} px")
    if best_checkpoint(run_dir).is_file():
        print(f"  {run_dir} already trained; keeping it")
    else:
        cfg = TrainConfig(
            manifest=str(manifest), out=str(run_dir), size=args.train_size, epochs=args.epochs,
            seed=args.seed, workers=args.workers, device=args.device,
        )  # fmt: skip
        trainer = train.start(cfg, run_dir)
        train_cli.describe(trainer)
        train_cli.report(train.run(trainer, on_epoch=train_cli.print_epoch))
    _step(4, "the test split")
    res_eval = evaluate.run(
        evaluate.EvaluateConfig(run_dir, workers=args.workers, device=args.device)
    )
    evaluate_cli.report(res_eval, "test")
    _step(5, "cam, gradcam, ig")
    cfg = explain.ExplainConfig(methods=["cam", "gradcam", "ig"])
    if all((saliency_dir(run_dir, "test", m) / "meta.json").is_file() for m in cfg.methods):
        print("  maps exist; kept when their settings match")
    start = time.perf_counter()
    with bar(0, "explain test") as progress:
        res = explain.run(run_dir, cfg, args.device, args.workers, progress.update)
    explain_cli.report(res, cfg, time.perf_counter() - start)
    _step(6, "faces for every group and cell, per split")
    for outcome in ("all", "correct", "incorrect"):
        cfg = average.AverageConfig(run_dir, split=outcome, workers=args.workers)
        average_cli.report(average.run(cfg))
    print("  contrasts: incorrect minus correct, and each cell against the rest")
    cfg = average.AverageConfig(
        run_dir, split="incorrect", contrast="correct", workers=args.workers
    )
    average.run(cfg)  # its table repeats the one above; the npz files hold the tests
    cells = list(res_eval.table.loc[res_eval.table["kind"] == "cell", "selection"])
    if cells:
        cfg = average.AverageConfig(run_dir, group=cells, contrast="rest", workers=args.workers)
        average.run(cfg)
    _step(7, "attribution per region")
    share_cli.report(share.run(share.ShareConfig(run_dir, workers=args.workers)))
    _step(8, "every region (blur fill, delete)")
    cfg = ablate.AblationConfig()
    with bar(0, "ablate test") as progress:
        res = ablate.run(run_dir, cfg, args.device, args.workers, progress.update)
    ablate_cli.report(res, cfg)
    _step(9, "ablation vs share")
    agreement_cli.report(agreement.run(agreement.AgreementConfig(run_dir)))
    _step(10, "PDF and PNG under run/figures")
    figures_cli.report_figures(figures.run(figures.FiguresConfig(run_dir)))
    _step(11, "one self-contained HTML file")
    return figures_cli.report_report(report.run(run_dir))
