"""The one-line warning every analysis command repeats for a model at chance."""

from __future__ import annotations

import os


def warn_if_at_chance(run: str | os.PathLike) -> bool:
    """Print the run's chance warning (evaluation, else the training log); True if printed."""
    from saliency.analysis.metrics import run_chance_warning

    message = run_chance_warning(run)
    if message:
        print(f"warning: {message}", flush=True)
    return message is not None
