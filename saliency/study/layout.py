"""Where a study's stages read and write, and the context each one runs in.

Folders inside the study's ``out``: ``data/`` (rendered or imported manifest), ``aligned/``,
``regions/`` and ``run/`` (the run folder of DESIGN.md). A stage reads the manifest of the
last of data, align and regions enabled before it.
"""

from __future__ import annotations

from pathlib import Path

from saliency.stages.contract import StageContext
from saliency.study.config import Study

FOLDERS = {"data": "data", "align": "aligned", "regions": "regions"}
MAKERS = ("data", "align", "regions")


def run_dir(study: Study) -> Path:
    return study.out / "run"


def manifest_of(study: Study, stage: str) -> Path:
    """The manifest that maker ``stage`` (data, align or regions) leaves."""
    if stage == "data":
        from saliency.study.config import build_config

        return build_config("data", study.stages["data"]).manifest_path(study.out / "data")
    return study.out / FOLDERS[stage] / "manifest.csv"


def manifest(study: Study, before: str = "train") -> Path:
    """The manifest that stage ``before`` reads: the last of data, align and regions before it."""
    earlier = MAKERS[: MAKERS.index(before)] if before in MAKERS else MAKERS
    return manifest_of(study, next(s for s in reversed(earlier) if study.enabled(s)))


def context(study: Study, stage: str, **hooks) -> StageContext:
    """The context stage ``stage`` runs in: its folders, the study's device and workers, and
    the caller's ``hooks`` (progress, on_epoch, on_trainer)."""
    device = study.device
    if stage in ("align", "regions") and device == "auto":
        device = "cpu"  # their models (FAN, BiSeNet) run where asked; the CPU unless told
    ctx = StageContext(device=device, workers=study.workers, **hooks)
    if stage in FOLDERS:
        ctx.out = study.out / FOLDERS[stage]
        if stage != "data":
            ctx.manifest = manifest(study, stage)
    else:
        ctx.run = run_dir(study)
        if stage in ("train", "adopt"):
            ctx.manifest = manifest(study, "train")
    return ctx
