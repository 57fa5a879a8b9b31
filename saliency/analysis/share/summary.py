"""Tables of the ``share`` command, per selection (split x group or class or cell).

``summary``: per region, n, share, area, enrichment with 95% intervals. ``truth`` (synthetic
data): relevance rank accuracy and the share in the planted regions, with intervals and
chance levels. Agreement with ablation is its own step (:mod:`saliency.analysis.agreement`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from saliency.analysis.recovered import share_leader
from saliency.analysis.selection import Selection, select
from saliency.analysis.share.evidence import evidence, share_matrices
from saliency.analysis.stats import bootstrap
from saliency.data.regions import REGIONS


@dataclass
class ShareTables:
    summary: pd.DataFrame
    truth: pd.DataFrame
    messages: list[str] = field(default_factory=list)


def selection_label(sel: Selection) -> str:
    """A selection's name in the tables: its class, else its group or cell."""
    return sel.label if sel.label else sel.group


def _empty_message(empty: list[Selection], selections: list[Selection]) -> str:
    """One line for the selections without images; an outcome with none at all is named once
    (``no incorrect predictions``) instead of once per group."""
    whole = [o for o in dict.fromkeys(s.outcome for s in empty)
             if all(s in empty for s in selections if s.outcome == o)]  # fmt: skip
    rest = [s.describe() for s in empty if s.outcome not in whole]
    parts = [f"no {o} predictions" for o in whole]
    if rest:
        parts.append(f"no images for: {'; '.join(rest)}")
    return ", ".join(parts) + ", so no rows for them"


def summarize_shares(
    per: pd.DataFrame,
    classes: list[str],
    selections: list[Selection],
    truth: list[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> ShareTables:
    """The share command's tables (module docstring) for each selection of ``per`` (a
    per-image share table)."""
    out = ShareTables(pd.DataFrame(), pd.DataFrame())
    summary, truth_rows, empty = [], [], []
    for sel in selections:
        s = per[select(per, sel, classes)]
        where = {"split": sel.outcome, "selection": selection_label(sel)}
        if len(s) == 0:
            empty.append(sel)
            continue
        shares, areas = share_matrices(s)
        present = areas.sum(0) > 0
        for r in np.asarray(REGIONS)[~present]:
            out.messages.append(
                f"{sel.describe()}: {r} has zero area in every image; left out (no mask "
                "pixels of that region: check the region masks)"
            )
        regions = [r for r, ok in zip(REGIONS, present, strict=True) if ok]
        ev = evidence(shares[:, present], areas[:, present], n_boot=n_boot, seed=seed)
        leader = share_leader(regions, ev["enrichment"][0], ev["enrichment"][1])
        for k, r in enumerate(regions):
            summary.append({
                **where, "region": r, "n": len(s),
                "share": ev["share"][0, k], "share_low": ev["share"][1, k],
                "share_high": ev["share"][2, k], "area": ev["area"][k],
                "enrichment": ev["enrichment"][0, k], "enrichment_low": ev["enrichment"][1, k],
                "enrichment_high": ev["enrichment"][2, k], "share_leader": r == leader,
            })  # fmt: skip
        if truth and "rank_accuracy" in s.columns:
            cued = s[[f"share_{r}" for r in truth]].sum(axis=1).to_numpy()
            vals = np.stack([s["rank_accuracy"].to_numpy(float), cued], axis=1)
            est, lo, hi = bootstrap(vals, n_boot=n_boot, seed=seed)
            truth_rows.append({
                **where, "n": len(s), "truth": "+".join(truth),
                "rank_accuracy": est[0], "rank_accuracy_low": lo[0], "rank_accuracy_high": hi[0],
                "truth_share": est[1], "truth_share_low": lo[1], "truth_share_high": hi[1],
                "chance": float(s["truth_area"].mean()), "share_leader": leader or "",
            })  # fmt: skip
    if empty:
        out.messages.insert(0, _empty_message(empty, selections))
    out.summary, out.truth = pd.DataFrame(summary), pd.DataFrame(truth_rows)
    return out
