"""Tables of the ``share`` command, per selection (split x group or class or cell).

``summary``: per region, n, share, area, enrichment with 95% intervals. ``truth`` (synthetic
data): relevance rank accuracy and the share in the planted regions, with intervals and
chance levels. ``agreement`` (when delete-mode ablations of the same images exist): the
rank correlation between ablation drops and enrichments, and the recovered verdict
(:mod:`saliency.analysis.recovered`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from saliency.analysis.recovered import ablation_leader, share_leader, verdict
from saliency.analysis.region_evidence import evidence, share_matrices
from saliency.analysis.selection import Selection, select
from saliency.analysis.stats import bootstrap
from saliency.data.regions import REGIONS


@dataclass
class ShareTables:
    summary: pd.DataFrame
    truth: pd.DataFrame
    agreement: pd.DataFrame
    messages: list[str] = field(default_factory=list)


def _label(sel: Selection) -> str:
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
    drops: dict[str, pd.DataFrame] | None = None,
    judged: tuple[bool, str] = (True, ""),
    truth: list[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> ShareTables:
    """The share command's tables (module docstring) for each selection of ``per`` (a
    per-image share table). ``drops``: fill name -> per-image drops (``path``,
    ``drop_<region>``), from :func:`saliency.analysis.region_evidence.ablation_drops`."""
    out = ShareTables(pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    summary, truth_rows, agree, empty = [], [], [], []
    for sel in selections:
        s = per[select(per, sel, classes)]
        where = {"split": sel.outcome, "selection": _label(sel)}
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
        for fill, d in (drops or {}).items():
            joined = s.merge(d, on="path", how="inner")
            if len(joined) < 2:
                continue
            sh, ar = share_matrices(joined, regions)
            dr = joined[[f"drop_{r}" for r in regions]].to_numpy(float)
            ev2 = evidence(sh, ar, dr, n_boot=n_boot, seed=seed)
            by_share = share_leader(regions, ev2["enrichment"][0], ev2["enrichment"][1])
            by_ablation = ablation_leader(regions, ev2["drop"][0], ev2["drop"][1])
            agree.append({
                **where, "fill": fill, "n": len(joined),
                "spearman": ev2["spearman"][0], "spearman_low": ev2["spearman"][1],
                "spearman_high": ev2["spearman"][2],
                "ablation_leader": by_ablation or "", "share_leader": by_share or "",
                "recovered": verdict(by_ablation, by_share, judged[0]) or "",
                "judged": judged[1] or "yes",
            })  # fmt: skip
    if empty:
        out.messages.insert(0, _empty_message(empty, selections))
    out.summary, out.truth, out.agreement = (
        pd.DataFrame(summary), pd.DataFrame(truth_rows), pd.DataFrame(agree)
    )  # fmt: skip
    return out
