"""``saliency validate``: are the explanations right? Planted cues, randomization, deletion."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="are the explanations right: planted cues, randomization, deletion",
        description="Verdicts per method under the definition of `recovered` (the ablation "
        "leader is the leader of the method's lift over the null model of `saliency null`), "
        "beside the earlier enrichment definition; on synthetic data, against the planted "
        "region. Cascading model-parameter randomization (Adebayo et al. 2018), the null "
        "model's own verdict (data randomization), and deletion / insertion curves against "
        "a random order. Writes RUN/validation/.",
    )
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--split", default="test", help="which explained data split")
    p.add_argument("--method", action="append", help="repeatable; default: every explained")
    p.add_argument("--fill", help="ablation and curve fill (default: the run's ablation fill)")
    p.add_argument("--randomization-images", type=int, default=16)
    p.add_argument(
        "--threshold", type=float, default=0.5,
        help="randomization passes when each similarity's mean is below this (default 0.5)",
    )  # fmt: skip
    p.add_argument("--curve-images", type=int, default=64)
    p.add_argument("--curve-steps", type=int, default=16)
    p.add_argument("--no-floor", action="store_true", help="skip the re-initialized floor")
    p.add_argument("--bootstrap", type=int, default=2000, help="resamples per interval")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.cli.chance import warn_if_at_chance
    from saliency.cli.progress import bar
    from saliency.stages import validate

    warn_if_at_chance(args.run)
    cfg = validate.ValidateConfig(
        args.run, args.split, args.method, args.fill, args.randomization_images,
        args.threshold, args.curve_images, args.curve_steps, not args.no_floor,
        args.bootstrap, args.seed, args.device, args.workers,
    )  # fmt: skip
    bars = []

    def counter(name: str, n: int):
        bars.append(bar(n, name, unit="step"))
        return bars[-1].update

    start = time.perf_counter()
    try:
        res = validate.run(cfg, counter)
    finally:
        for b in bars:
            b.close()
    return report(res, time.perf_counter() - start)


def _yes(v) -> str:
    return "-" if v is None or v != v else ("yes" if v else "no")


def report(res, seconds: float | None = None) -> int:
    """Print a validate stage's verdict table."""
    for line in res.notes:
        print(line)
    print_verdicts(res.verdicts, res.randomization)
    for r in res.curves.to_dict("records"):
        if r["method"] == "random":
            continue
        print(
            f"  curves {r['method']:8s} deletion AUC {r['deletion_auc']:.3f} "
            f"({r['deletion_vs_random']:+.3f} vs random), insertion AUC "
            f"{r['insertion_auc']:.3f} ({r['insertion_vs_random']:+.3f}): {_yes(r['passed'])}"
        )
    took = f" in {seconds:.0f} s" if seconds is not None else ""
    print(f"{took.strip() or 'done'} -> {res.out}")
    return 0


def print_verdicts(verdicts, randomization) -> None:
    """Print the verdict table and the randomization checks (``validation/*.csv`` frames)."""
    if len(verdicts):
        print("verdicts (recovered = ablation leader and lift leader over the null agree):")
        for r in verdicts.to_dict("records"):
            planted = f", planted {r['planted']}" if r["planted"] else ""
            got = r["recovered"] or ("none" if r["verdict"] == "judged" else f"- ({r['verdict']})")
            line = (
                f"  {r['method']:8s} recovered {got}{planted}; ablation "
                f"{r['ablation_leader'] or '-'}, lift {r['lift_leader'] or '-'}; old definition: "
                f"{r['recovered_old'] or 'none'}"
            )
            if "null_recovered" in r:
                line += f"; null recovers {r['null_recovered'] or 'nothing'}"
            print(line)
    for r in [] if randomization is None else randomization.to_dict("records"):
        print(
            f"  randomization {r['method']:8s} {'passed' if r['passed'] else 'FAILED'}: with "
            f"{r['blocks']} blocks re-initialized, Spearman {r['spearman']:.2f}, of |maps| "
            f"{r['spearman_abs']:.2f}, SSIM {r['ssim']:.2f} (threshold {r['threshold']})"
        )
