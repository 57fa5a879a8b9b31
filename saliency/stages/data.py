"""The data stage of a study: render synthetic faces (``saliency synth``), import a data set
(``saliency data import``) or take a manifest as it is; then check the manifest (``saliency
data check``) before anything trains on it.

Writes ``OUT/manifest.csv`` (and ``OUT/manifest_skipped.csv`` with a reason per row an
importer could not use); for ``source = "manifest"`` the manifest stays where it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from saliency.atomic import atomic_write_text
from saliency.configs.data import DataConfig
from saliency.data.check import CheckResult, check_manifest, summarize
from saliency.data.synth.config import SynthConfig
from saliency.data.synth.generate import MANIFEST, generate
from saliency.imsize import size_text
from saliency.stages.contract import Result, StageContext


@dataclass
class SynthResult:
    manifest: Path
    frame: pd.DataFrame  # the manifest's rows
    seconds: float
    preview: Path | None


def render(
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
        from saliency.viz.previews import synth_preview

        sheet = synth_preview(out, out / "preview.png")
    return SynthResult(out / MANIFEST, df, seconds, sheet)


def synth_lines(res: SynthResult, cfg: SynthConfig) -> list[str]:
    """What the command prints: the count, the speed, the cells, the preview."""
    df, seconds = res.frame, max(res.seconds, 1e-9)
    cues = ", ".join(f"{k}={v:g}" for k, v in cfg.cues.items()) or "none"
    out = [
        f"wrote {len(df)} faces ({size_text(cfg.size)} px, cues: {cues}) to {res.manifest} "
        f"in {seconds:.1f} s ({len(df) / seconds:.0f} img/s)",
        df.groupby(["group", "label"]).size().rename("n").to_string(),
    ]
    return out + ([f"preview: {res.preview}"] if res.preview else [])


def run_synth(cfg: SynthConfig, ctx: StageContext, preview: bool = False) -> Result:
    """The stage contract: render ``cfg`` into the context's ``out`` folder."""
    if ctx.out is None:
        raise ValueError("synth needs an output folder (--out)")
    res = render(cfg, ctx.out, ctx.workers, preview, ctx.progress("synth", cfg.n))
    return Result(res, synth_lines(res, cfg))


@dataclass
class CheckStageResult:
    manifest: Path
    result: CheckResult
    summary: pd.DataFrame  # one row per kind of problem, with a count and an example


def check(
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


def check_lines(res: CheckStageResult) -> list[str]:
    """What ``saliency data check`` prints: counts, then one line per kind of problem."""
    result, n_err = res.result, len(res.result.errors)
    n_warn = len(result.problems) - n_err
    out = [
        f"{res.manifest}: {result.n_rows} rows, classes {result.classes}, "
        f"{n_err} error(s), {n_warn} warning(s)"
    ]
    for _, row in res.summary.iterrows():
        out.append(
            f"  {row['severity']:7s} {row['kind']:10s} {row['count']:6d}  e.g. {row['example']}"
        )
    return out


@dataclass
class DataResult:
    manifest: Path
    made: Any  # the synth stage's result, the importer's, or None (a given manifest)
    check: Any  # the check stage's result, or None


def run_stage(cfg: DataConfig, ctx: StageContext) -> Result:
    """The stage contract: make (or take) the manifest into ``ctx.out``, then check it."""
    out = Path(ctx.out)
    text: list[str] = []
    made = None
    if cfg.source not in ("synth", "splits") and not Path(cfg.path).exists():
        raise FileNotFoundError(
            f"data.path {cfg.path} does not exist: point it at your copy of the data, "
            "or pass --data PATH"
        )
    if cfg.source == "synth":
        res = run_synth(cfg.synth, ctx, cfg.preview)
        made, text = res.value, res.lines()
    elif cfg.source == "import":
        made = _import(cfg, out)
        text = [f"imported {len(made.df)} rows ({len(made.skipped)} skipped, with reasons)"]
    elif cfg.source == "splits":
        made = _import_splits(cfg, out)
        text = [f"{split}: imported {n} rows from {where}" for split, (n, where) in made.items()]
    manifest = cfg.manifest_path(out)
    checked = check(manifest) if cfg.check else None
    if checked is not None:
        text += check_lines(checked)
        if not checked.result.ok:
            raise ValueError(f"{manifest} has errors; `saliency data check` lists them")
    return Result(DataResult(manifest, made, checked), text)


def _import(cfg: DataConfig, out: Path):
    from saliency.data.importers import import_dataset
    from saliency.data.manifest import write_manifest

    res = import_dataset(cfg.format, cfg.path, out / "manifest.csv", cfg.imports)
    if res.df.empty:
        first = f"; first reason: {res.skipped.iloc[0]['reason']}" if len(res.skipped) else ""
        raise ValueError(f"no usable rows in {cfg.path}{first}")
    write_manifest(res.df, out / "manifest.csv")
    if len(res.skipped):
        atomic_write_text(out / "manifest_skipped.csv", res.skipped.to_csv(index=False))
    return res


def _import_splits(cfg: DataConfig, out: Path) -> dict[str, tuple[int, str]]:
    """One data set per split (``data.splits``) into one manifest: each imported with its
    own importer, every row given that split whatever its source said; the skipped rows of
    all in ``manifest_skipped.csv`` with their split. Returns split -> (rows, source)."""
    from saliency.configs.data import split_sources
    from saliency.data.importers import import_dataset
    from saliency.data.importers.common import sample_cells
    from saliency.data.manifest import write_manifest

    frames, skipped, counts = [], [], {}
    for split, (fmt, path, opts) in split_sources(cfg.splits).items():
        if not Path(path).exists():
            raise FileNotFoundError(f"data.splits.{split}.path {path} does not exist")
        res = import_dataset(fmt, path, out / "manifest.csv", opts)
        if res.df.empty:
            raise ValueError(f"data.splits.{split}: no usable rows in {path}")
        frames.append(sample_cells(res.df.assign(split=split), opts.per_cell, opts.seed))
        skipped.append(res.skipped.assign(split=split))
        counts[split] = (len(res.df), f"{path} ({fmt})")
    df = pd.concat(frames, ignore_index=True)
    write_manifest(df, out / "manifest.csv")
    skipped = pd.concat(skipped, ignore_index=True)
    if len(skipped):
        atomic_write_text(out / "manifest_skipped.csv", skipped.to_csv(index=False))
    return counts
