"""``saliency demo``: ``analyses/synthetic_demo.toml`` through the study runner.

Synthetic faces with a planted brow cue and a hard cell; train, evaluate, explain (cam,
gradcam, ig), averages, share, ablation of all six regions, the null model, agreement,
validate, figures and the report. ``--quick`` lays the file's ``quick`` profile over it: every
stage on tiny settings, a smoke test with no verdict promised. Stages already done with the
same settings are skipped, so a second run takes seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def demo_study() -> Path:
    """The demo's TOML: ``analyses/`` beside the package (a source checkout)."""
    import saliency

    path = Path(saliency.__file__).resolve().parents[1] / "analyses" / "synthetic_demo.toml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the demo runs from a source checkout of saliency "
            "(git clone, then `make demo`)"
        )
    return path


def register(sub: argparse._SubParsersAction) -> None:
    from saliency.cli.run import add_run_options

    p = sub.add_parser("demo", help="the whole study on built-in synthetic faces")
    add_run_options(p)
    p.add_argument(
        "--quick", action="store_true", help="every stage on tiny settings (no verdict promised)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.cli.run import run_study
    from saliency.study.config import load

    study = load(demo_study(), "quick" if args.quick else None)
    closing = (
        "quick demo: every stage ran on tiny settings; its numbers are a smoke test, not a "
        "result (run `saliency demo` for the study)"
        if args.quick
        else ""
    )
    return run_study(study, args, closing)
