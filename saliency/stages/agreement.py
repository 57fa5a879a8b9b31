"""The agreement stage: do ablation and attribution share single out the same region?

Runs after both exist: reads every method's ``RUN/share/<method>_<maps split>/per_image.csv``
and the delete-mode ablations ``RUN/ablation/<region>_<fill>_delete/``; writes
``RUN/agreement/<method>_<maps split>.csv`` (one row per selection and fill: Spearman across
regions with its interval, each answer's leader and, when ``RUN/null/`` holds the null
model's shares (``saliency null``), the lift leader and the recovered verdict).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from saliency.analysis.agreement import agreement_table
from saliency.analysis.recovered import NO_NULL, judged
from saliency.analysis.selection import region_selections
from saliency.atomic import atomic_write_text
from saliency.configs.checks import AgreementConfig
from saliency.methods.store import absolute_paths
from saliency.rundir import agreement_dir, record, saliency_dir, share_dir
from saliency.runs import Run
from saliency.stages.contract import Result, StageContext


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
    if cfg.methods:
        from saliency.methods.registry import check_methods

        check_methods(cfg.methods)  # a misspelt method: one line, before anything is read
    run = Run(cfg.run).require()
    run_dir = run.path
    result = AgreementResult(out=agreement_dir(run_dir))
    fills = cfg.fills or run.ablation_fills()
    drops = {f: d for f in fills if (d := run.ablation_drops(f)) is not None}
    methods = cfg.methods or _shared_methods(run_dir, cfg.maps_split)
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
        null = run.null_shares(method, cfg.maps_split)
        if not null:
            result.notes.append(f"{method}: " + NO_NULL.format(run=cfg.run))
        sels = region_selections(per, meta["classes"], None, cfg.groups)
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


def lines(res: AgreementResult) -> list[str]:
    """What the command prints: what is missing, notes, one line per method and selection."""
    out = list(res.missing)
    if not res.tables:
        return out
    out += list(dict.fromkeys(res.notes))
    out.append("agreement of ablation and attribution share (Spearman across regions, 95% "
               "interval):")  # fmt: skip
    for method, t in res.tables.items():
        shown = t[t["split"] == "all"] if len(t) else t
        for _, r in shown.iterrows():
            verdict = (
                f"recovered: {r['recovered']}" if r["recovered"]
                else "nothing recovered" if r["judged"] == "yes" else f"no verdict ({r['judged']})"
            )  # fmt: skip
            out.append(
                f"  {method}, {r['selection']} ({r['fill']}, n = {r['n']}): {r['spearman']:.2f} "
                f"[{r['spearman_low']:.2f}, {r['spearman_high']:.2f}]; ablation leader "
                f"{r['ablation_leader'] or 'none'}, enrichment leader "
                f"{r['share_leader'] or 'none'}, lift leader {r['lift_leader'] or 'none'}; "
                f"{verdict}"
            )
    return out + [f"-> {res.out}"]


def run_stage(cfg: AgreementConfig, ctx: StageContext) -> Result:
    """The stage contract: agreement on the context's run; code 1 when inputs are missing."""
    res = run(ctx.fill(cfg))
    return Result(res, lines(res), 0 if res.tables else 1)
