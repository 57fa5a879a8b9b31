"""The check stage: validate a manifest (files, labels, duplicates, landmarks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from saliency.atomic import atomic_write_text
from saliency.data.check import CheckResult, check_manifest, summarize


@dataclass
class CheckStageResult:
    manifest: Path
    result: CheckResult
    summary: pd.DataFrame  # one row per kind of problem, with a count and an example


def run(
    manifest: str | Path,
    classes: list[str] | None = None,
    decode: bool = False,
    report: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> CheckStageResult:
    """Check ``manifest``; with ``report``, write every problem row there as CSV."""
    result = check_manifest(manifest, classes=classes, decode=decode, progress=progress)
    if report is not None:
        atomic_write_text(Path(report), result.frame().to_csv(index=False))
    return CheckStageResult(Path(manifest), result, summarize(result))
