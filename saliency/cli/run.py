"""``saliency run STUDY.toml``: a whole study from one config, skipping stages already done.

Prints the plan (what each stage will do and why), a progress line per stage with its
elapsed time and the stage's own report, then where the time went and the study's headline
results (read back from its files, so a second run that skips everything prints them too).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="a whole study from one TOML config, skipping stages already done",
        description="Examples: analyses/*.toml; `saliency run --template` prints every key. "
        "Each stage's table holds that command's settings under the same names (--n-steps is "
        "n_steps; --ig-n-steps is n_steps in [explain.ig]); stages whose settings changed run "
        "again (and say so). More processes or GPUs: torchrun --nproc_per_node=N -m saliency -- "
        "run STUDY.toml (the heavy stages shard over the processes; the rest run on rank 0).",
    )
    p.add_argument("study", type=Path, nargs="?", help="the study's TOML file")
    p.add_argument("--template", nargs="*", metavar="STAGE",
                   help="print a study TOML with every key, its default and its help, and exit "
                   "(with STAGE...: only those tables)")  # fmt: skip
    add_run_options(p)
    p.add_argument("--profile", help="lay the study's [profiles.NAME] tables over it")
    p.add_argument("--data", type=Path, help="your copy of the data (sets data.path)")
    p.set_defaults(func=run)


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="output folder (default: the study's study.out)")
    p.add_argument("--only", nargs="+", metavar="STAGE",
                   help="run only these stages (data, align, ..., report)")  # fmt: skip
    p.add_argument("--device", help="cpu, cuda, mps or auto (default: the study's)")
    p.add_argument("--workers", type=int, help="worker processes (default: the study's)")
    p.add_argument("--wait", action="store_true",
                   help="if another command is writing the study's run, wait for it "
                   "(default: stop)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from saliency.study.config import load

    if args.template is not None:
        from saliency.study.template import template

        print(template(args.template or None), end="")
        return 0
    if args.study is None:
        raise ValueError("give the study's TOML file (or --template to print one)")
    over = {"data": {"path": str(args.data.resolve())}} if args.data else None
    return run_study(load(args.study, args.profile, over), args)


def run_study(study, args: argparse.Namespace, closing: str = "") -> int:
    """Plan and run ``study`` with the command-line overrides in ``args``."""
    from saliency.cli.stage_command import held
    from saliency.study.layout import run_dir

    if args.out is not None:
        study.out = args.out
    # one writer: the study's run folder is held for the whole study (its stages nest)
    with held(run_dir(study), getattr(args, "command", None) or "run", args, create=True):
        _run_stages(study, args)
    print_summary(study)  # (after the hold: a study that made no run has no summary)
    if closing:
        print(closing)
    return 0


def _run_stages(study, args: argparse.Namespace) -> None:
    from saliency.cli.stage_command import Bars
    from saliency.cli.train import describe, print_epoch
    from saliency.distributed import broadcast, from_env, rank_device
    from saliency.study.runner import execute, plan

    world = from_env()
    study.device = rank_device(args.device or study.device, world)
    study.workers = args.workers if args.workers is not None else study.workers
    decisions = broadcast(plan(study, args.only))  # rank 0's plan, on every rank
    for w in dict.fromkeys(study.warnings):
        print(f"warning: {w}")
    print(f"study {study.name} -> {study.out}")
    for d in decisions:
        print(f"  {d.stage:10s} {d.action:6s} {d.reason}")
    times: list[tuple[str, str, float]] = []
    total = time.perf_counter()
    for k, d in enumerate(decisions, 1):
        head = f"[{k}/{len(decisions)}] {d.stage}"
        if d.action == "skip":  # the plan above said so
            execute(study, d, rank=world.rank)  # a record under older names is rewritten
            times.append((d.stage, "skipped", 0.0))
            continue
        print(f"{head}: {d.action} ({d.reason})", flush=True)
        bars = Bars()
        try:
            result, seconds = execute(study, d, progress=bars, on_epoch=print_epoch,
                                      on_trainer=describe, rank=world.rank,
                                      world_size=world.size)  # fmt: skip
        finally:
            bars.close()
        for line in result.lines():
            print(line)
        print(f"{head}: done in {_clock(seconds)}", flush=True)
        times.append((d.stage, d.action, seconds))
    print_times(times, time.perf_counter() - total)


def _clock(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def print_times(times: list[tuple[str, str, float]], total: float) -> None:
    """Where the time went, longest first."""
    ran = sorted((t for t in times if t[1] != "skipped"), key=lambda t: -t[2])
    skipped = [t[0] for t in times if t[1] == "skipped"]
    print(f"time: {_clock(total)} in all" + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
    for stage, _, seconds in ran:
        print(f"  {stage:10s} {_clock(seconds):>12s}  {seconds / max(total, 1e-9):6.1%}")


def print_summary(study) -> None:
    """The study's headline results from its files."""
    from saliency.cli.chance import warn_if_at_chance
    from saliency.stages.ablate import ranking_lines
    from saliency.stages.evaluate import table_lines
    from saliency.stages.validate import verdict_lines
    from saliency.study.layout import run_dir
    from saliency.study.summary import summarize

    run = run_dir(study)
    if not run.is_dir():
        return
    s = summarize(run)
    print(f"\nsummary of {run}")
    warn_if_at_chance(run)
    text: list[str] = []
    if s.groups is not None:
        text.append(f"accuracy on the {s.split} split per group and cell (95% Wilson intervals):")
        text += table_lines(s.groups, s.metrics)
    if s.ranking is not None:
        text.append(f"region ranking ({s.ranking_file.name}):")
        text += ranking_lines("all", s.ranking)
    if s.verdicts is not None:
        text += verdict_lines(s.verdicts, s.randomization)
    if s.report is not None:
        text.append(f"report: {s.report}")
    if s.missing:
        text.append("not in this study: " + ", ".join(s.missing))
    for line in text:
        print(line)
