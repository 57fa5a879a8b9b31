"""The synth stage: render a planted-cue face data set (images, masks, manifest, preview)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from saliency.data.synth.config import SynthConfig
from saliency.data.synth.generate import MANIFEST, generate


@dataclass
class SynthResult:
    manifest: Path
    frame: pd.DataFrame  # the manifest's rows
    seconds: float
    preview: Path | None


def run(
    cfg: SynthConfig,
    out: str | Path,
    workers: int | None = None,
    preview: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SynthResult:
    """Render ``cfg.n`` faces into ``out`` (and ``out/preview.png`` with ``preview``)."""
    out = Path(out)
    start = time.perf_counter()
    df = generate(cfg, out, workers=workers, progress=progress)
    seconds = time.perf_counter() - start
    sheet = None
    if preview:
        from saliency.stages.previews import synth_preview

        sheet = synth_preview(out, out / "preview.png")
    return SynthResult(out / MANIFEST, df, seconds, sheet)
