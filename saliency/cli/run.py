"""``saliency run STUDY.toml``: a whole study from one config, skipping stages already done.

Prints the plan (what each stage will do and why), a progress line per stage with its
elapsed time and the stage's own report, then where the time went and the study's headline
results (read back from its files, so a second run that skips everything prints them too).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from saliency.study.config import STAGES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="a whole study from one TOML config, skipping stages already done",
        description="Templates: analyses/*.toml. Each stage's table holds that command's "
        "options; stages whose settings changed run again (and say so).",
    )
    p.add_argument("study", type=Path, help="the study's TOML file")
    add_run_options(p)
    p.add_argument("--profile", help="lay the study's [profiles.NAME] tables over it")
    p.add_argument("--data", type=Path, help="your copy of the data (sets data.path)")
    p.set_defaults(func=run)


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="output folder (default: the study's study.out)")
    p.add_argument("--only", nargs="+", choices=STAGES, metavar="STAGE",
                   help=f"run only these stages ({', '.join(STAGES)})")  # fmt: skip
    p.add_argument("--device", help="cpu, cuda, mps or auto (default: the study's)")
    p.add_argument("--workers", type=int, help="worker processes (default: the study's)")


def run(args: argparse.Namespace) -> int:
    from saliency.study.config import load

    over = {"data": {"path": str(args.data.resolve())}} if args.data else None
    return run_study(load(args.study, args.profile, over), args)


def run_study(study, args: argparse.Namespace, closing: str = "") -> int:
    """Plan and run ``study`` with the command-line overrides in ``args``."""
    from saliency.study.runner import execute, plan

    if args.out is not None:
        study.out = args.out
    study.device = args.device or study.device
    study.workers = args.workers if args.workers is not None else study.workers
    decisions = plan(study, args.only)
    print(f"study {study.name} -> {study.out}")
    for d in decisions:
        print(f"  {d.stage:10s} {d.action:6s} {d.reason}")
    times: list[tuple[str, str, float]] = []
    total = time.perf_counter()
    for k, d in enumerate(decisions, 1):
        head = f"[{k}/{len(decisions)}] {d.stage}"
        if d.action == "skip":  # the plan above said so
            times.append((d.stage, "skipped", 0.0))
            continue
        print(f"{head}: {d.action} ({d.reason})", flush=True)
        hooks, bars = _hooks()
        try:
            result, seconds = execute(study, d, hooks)
        finally:
            for b in bars:
                b.close()
        report(d.stage, result, seconds)
        print(f"{head}: done in {_clock(seconds)}", flush=True)
        times.append((d.stage, d.action, seconds))
    print_times(times, time.perf_counter() - total)
    print_summary(study)
    if closing:
        print(closing)
    return 0


def _hooks():
    from saliency.cli.progress import bar
    from saliency.cli.train import describe, print_epoch
    from saliency.study.steps import Hooks

    bars = []

    def progress(name: str, total: int):
        bars.append(bar(total, name))
        return bars[-1].update

    return Hooks(progress=progress, on_epoch=print_epoch, on_trainer=describe), bars


def _clock(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def report(stage: str, result, seconds: float) -> None:
    """Print one stage's result through that command's own report."""
    from saliency.cli import (
        ablate,
        adopt,
        agreement,
        align,
        average,
        data,
        evaluate,
        explain,
        figures,
        null,
        regions,
        share,
        synth,
        train,
        validate,
    )

    if stage == "data":
        made, checked = result["made"], result["check"]
        if isinstance(made, tuple):
            synth.report(*made)
        elif made is not None:
            print(f"imported {len(made.df)} rows ({len(made.skipped)} skipped, with reasons)")
        if checked is not None:
            data.report_check(checked)
    elif stage in ("align", "regions"):
        {"align": align, "regions": regions}[stage].report(*result)
    elif stage == "train":
        train.report(result[1])  # describe() ran before training
    elif stage == "adopt":
        adopt.report(result)
    elif stage == "evaluate":
        for split, res in result:
            evaluate.report(res, split)
    elif stage == "explain":
        explain.report(result[1], result[0], seconds)
    elif stage == "average":
        for res in result:
            average.report(res)
    elif stage == "ablate":
        ablate.report(result[1], result[0])
    elif stage in ("null", "validate"):
        {"null": null, "validate": validate}[stage].report(result, seconds)
    elif stage in ("share", "agreement"):
        {"share": share, "agreement": agreement}[stage].report(result)
    elif stage == "figures":
        figures.report_figures(result)
    elif stage == "report":
        figures.report_report(result)


def print_times(times: list[tuple[str, str, float]], total: float) -> None:
    """Where the time went, longest first."""
    ran = sorted((t for t in times if t[1] != "skipped"), key=lambda t: -t[2])
    skipped = [t[0] for t in times if t[1] == "skipped"]
    print(f"time: {_clock(total)} in all" + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
    for stage, _, seconds in ran:
        print(f"  {stage:10s} {_clock(seconds):>12s}  {seconds / max(total, 1e-9):6.1%}")


def print_summary(study) -> None:
    """The study's headline results from its files."""
    from saliency.cli.ablate import print_ranking
    from saliency.cli.chance import warn_if_at_chance
    from saliency.cli.evaluate import print_table
    from saliency.cli.validate import print_verdicts
    from saliency.study.steps import run_dir
    from saliency.study.summary import summarize

    run = run_dir(study)
    if not run.is_dir():
        return
    s = summarize(run)
    print(f"\nsummary of {run}")
    warn_if_at_chance(run)
    if s.groups is not None:
        print(f"accuracy on the {s.split} split per group and cell (95% Wilson intervals):")
        print_table(s.groups, s.metrics)
    if s.ranking is not None:
        print(f"region ranking ({s.ranking_file.name}):")
        print_ranking("all", s.ranking)
    if s.verdicts is not None:
        print_verdicts(s.verdicts, s.randomization)
    if s.report is not None:
        print(f"report: {s.report}")
    if s.missing:
        print("not in this study: " + ", ".join(s.missing))
