"""The agreement stage: do ablation and attribution share single out the same region?

Runs after both exist: reads every method's ``RUN/share/<method>_<maps split>/per_image.csv``
and the delete-mode ablations ``RUN/ablation/<region>_<fill>_delete/``; writes
``RUN/agreement/<method>_<maps split>.csv`` (one row per selection and fill: Spearman across
regions with its interval, each answer's leader and, when ``RUN/null/`` holds the null
model's shares (``saliency null``), the lift leader and the recovered verdict).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from saliency.analysis.agreement import ablation_drops, ablation_fills, agreement_table
from saliency.analysis.recovered import NO_NULL, judged
from saliency.analysis.selection import region_selections
from saliency.atomic import atomic_write_text
from saliency.methods.store import absolute_paths
from saliency.rundir import (
    agreement_dir,
    null_dir,
    record,
    require_run,
    saliency_dir,
    share_dir,
)


@dataclass
class AgreementConfig:
    run: Path
    maps_split: str = "test"
    method: list[str] | None = None  # default: every method with shares
    fill: list[str] | None = None  # default: every fill with delete-mode ablations
    group: list[str] | None = None  # default: all, every subgroup, class and cell
    bootstrap: int = 2000
    seed: int = 0

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


@dataclass
class AgreementResult:
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # method -> table
    out: Path | None = None
    missing: list[str] = field(default_factory=list)  # what is not there yet, and its command
    notes: list[str] = field(default_factory=list)  # e.g. no null model: no verdicts


def _shared_methods(run: Path, split: str) -> list[str]:
    found = sorted(share_dir(run).glob(f"*_{split}/per_image.csv"))
    return [f.parent.name[: -len(split) - 1] for f in found]


def run(cfg: AgreementConfig) -> AgreementResult:
    """Agreement tables for every method with shares and every fill with ablations."""
    run_dir = require_run(cfg.run)
    result = AgreementResult(out=agreement_dir(run_dir))
    fills = cfg.fill or ablation_fills(run_dir)
    drops = {f: d for f in fills if (d := ablation_drops(run_dir, f)) is not None}
    methods = cfg.method or _shared_methods(run_dir, cfg.maps_split)
    if not drops:
        result.missing.append(
            f"no delete-mode ablation of 3 or more regions: run `saliency ablate --run {cfg.run}`"
        )
    if not methods:
        result.missing.append(f"no attribution shares: run `saliency share --run {cfg.run}`")
    if result.missing:
        return result
    for method in methods:
        per_file = share_dir(run_dir, method, cfg.maps_split) / "per_image.csv"
        meta_file = saliency_dir(run_dir, cfg.maps_split, method) / "meta.json"
        if not per_file.is_file() or not meta_file.is_file():
            result.missing.append(f"{method}: no shares of its maps; run `saliency share` first")
            continue
        meta = json.loads(meta_file.read_text())
        per = pd.read_csv(per_file, keep_default_na=False)
        per["image"] = absolute_paths(per, meta)
        null = null_shares(run_dir, method, cfg.maps_split)
        if null is None:
            result.notes.append(f"{method}: " + NO_NULL.format(run=cfg.run))
        sels = region_selections(per, meta["classes"], None, cfg.group)
        table = agreement_table(
            per, meta["classes"], sels, drops, judged(meta), cfg.bootstrap, cfg.seed, null
        ).drop(columns="image", errors="ignore")
        result.tables[method] = table
        atomic_write_text(
            result.out / f"{method}_{cfg.maps_split}.csv",
            table.to_csv(index=False, float_format="%.5g"),
        )
    record(run_dir, "agreement", cfg.to_dict())
    return result


def null_shares(run: Path, method: str, split: str) -> pd.DataFrame | None:
    """The null model's per-image shares for ``method`` (``RUN/null/share/``, written by
    ``saliency null``) with an ``image`` column, or None when there are none."""
    null = null_dir(run)
    per_file = share_dir(null, method, split) / "per_image.csv"
    meta_file = saliency_dir(null, split, method) / "meta.json"
    if not per_file.is_file() or not meta_file.is_file():
        return None
    per = pd.read_csv(per_file, keep_default_na=False)
    per["image"] = absolute_paths(per, json.loads(meta_file.read_text()))
    return per
