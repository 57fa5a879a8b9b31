"""A study's headline results, read back from its files (so a study whose stages were all
skipped prints the same summary as one that just ran them): the group accuracy table with
the hardest cell's gap, the ablation ranking, the validation verdicts and randomization
checks, and the report's path."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from saliency import rundir


@dataclass
class StudySummary:
    run: Path
    split: str
    groups: pd.DataFrame | None = None  # eval/<split>/group_accuracy.csv
    metrics: dict | None = None  # eval/<split>/metrics.json
    ranking: pd.DataFrame | None = None  # ablation ranking of the selection "all"
    ranking_file: Path | None = None
    verdicts: pd.DataFrame | None = None  # validation/verdicts.csv
    randomization: pd.DataFrame | None = None  # validation/randomization_verdicts.csv
    report: Path | None = None
    missing: list[str] = field(default_factory=list)  # what the study did not make


def _csv(path: Path, text: bool = False) -> pd.DataFrame | None:
    """``text``: empty cells stay empty strings (verdict columns), else NaN."""
    return pd.read_csv(path, keep_default_na=not text) if path.is_file() else None


def summarize(run: str | Path, split: str = "test") -> StudySummary:
    """Everything above that exists under ``run``; the rest is listed in ``missing``."""
    run = Path(run)
    s = StudySummary(run, split)
    ev = rundir.eval_dir(run, split)
    s.groups = _csv(ev / "group_accuracy.csv")
    if (ev / "metrics.json").is_file():
        s.metrics = json.loads((ev / "metrics.json").read_text())
    if s.groups is None:
        s.missing.append("evaluation")
    rankings = sorted(rundir.ablation_dir(run).glob("ranking_*_delete.csv"),
                      key=lambda p: (p.stem != "ranking_blur_delete", p.stem))  # fmt: skip
    if rankings:
        table = _csv(rankings[0])
        s.ranking = table[table["selection"] == "all"].reset_index(drop=True)
        s.ranking_file = rankings[0]
    else:
        s.missing.append("ablation ranking")
    val = rundir.validation_dir(run)
    s.verdicts = _csv(val / "verdicts.csv", text=True)
    s.randomization = _csv(val / "randomization_verdicts.csv")
    if s.verdicts is None:
        s.missing.append("validation")
    report = rundir.report_path(run)
    s.report = report if report.is_file() else None
    if s.report is None:
        s.missing.append("report")
    return s
