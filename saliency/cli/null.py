"""``saliency null``: train and explain the null model (shuffled labels) that verdicts need."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "null",
        help="train and explain the null model (shuffled labels) for verdicts",
        description="Train RUN/null/ by the run's own recipe on the same images with the "
        "train and val labels shuffled (seeded), evaluate it, explain the images the run "
        "explained with the same methods, settings and target classes, and measure its "
        "attribution shares. `agreement` and `validate` compare the run with it: a region "
        "is recovered only when the run's attribution lifts it above the null's. Resumable: "
        "run it again to continue.",
    )
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0, help="seed of the label permutation")
    p.add_argument(
        "--epochs", type=int, help="cap the null's epochs (default: the run's recipe; a "
        "null that never leaves chance trains all of them)",
    )  # fmt: skip
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.cli.progress import bar
    from saliency.cli.train import print_epoch
    from saliency.stages import null

    cfg = null.NullConfig(args.run, args.seed, args.epochs, args.device, args.workers)
    start = time.perf_counter()
    bars = []

    def counter(split: str, n: int):
        bars.append(bar(n, f"explain null {split}"))
        return bars[-1].update

    try:
        res = null.run(cfg, on_epoch=print_epoch, progress=counter)
    finally:
        for b in bars:
            b.close()
    return report(res, time.perf_counter() - start)


def report(res, seconds: float) -> int:
    """Print a null stage's result."""
    a = res.test_accuracy
    print(
        f"null model: {res.changed:.0%} of train/val labels changed by the shuffle; "
        f"{len(res.train_log)} epochs; test accuracy {a['value']:.1%} "
        f"[{a['ci'][0]:.1%}, {a['ci'][1]:.1%}] on true labels"
    )
    if res.epochs != res.recipe_epochs:
        print(f"note: the null trained at most {res.epochs} epochs, the recipe {res.recipe_epochs}")
    if res.learned:
        print(
            "warning: the null's validation accuracy left chance; shuffled labels should "
            "leave nothing to learn (check for duplicate images across splits)"
        )
    for split, methods in res.explained.items():
        print(f"explained {split}: {', '.join(methods)}")
    print(f"in {seconds:.0f} s -> {res.out}")
    return 0
