"""Agreement of the two answers to "which region matters": ablation drops and attribution
shares, per method, fill and selection, computed once both exist.

Takes per-image ablation drops (:meth:`saliency.runs.Run.ablation_drops`) and a method's
per-image shares (``RUN/share/<method>_<split>/per_image.csv``); the table has Spearman's
rank correlation across regions between drops and enrichments (joint bootstrap,
:mod:`saliency.analysis.share.evidence`), each answer's leader and the recovered verdict
(:mod:`saliency.analysis.recovered`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from saliency.analysis.familywise import max_t
from saliency.analysis.recovered import (
    ablation_leader,
    lift,
    lift_leader,
    paired_all,
    share_leader,
    verdict,
)
from saliency.analysis.selection import Selection, select
from saliency.analysis.share.evidence import evidence, share_matrices
from saliency.analysis.share.summary import selection_label
from saliency.data.regions import REGIONS


def agreement_table(
    per: pd.DataFrame,
    classes: list[str],
    selections: list[Selection],
    drops: dict[str, pd.DataFrame],
    judged: tuple[bool, str] = (True, ""),
    n_boot: int = 2000,
    seed: int = 0,
    null: pd.DataFrame | list[pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """One row per selection and fill: ``per`` is a method's per-image share table,
    ``drops`` maps a fill to per-image drops (``path``, ``drop_<region>``, from
    :meth:`saliency.runs.Run.ablation_drops`); ``judged`` says whether the method's share
    can carry a claim; ``null`` is the null model's per-image share table for the same
    method, or one table per null (``saliency null --seeds K``: the lift is judged against
    their average and spread), all with an ``image`` column. Without it, ``recovered`` is
    empty: no verdict is made."""
    nulls = [] if null is None else [null] if isinstance(null, pd.DataFrame) else list(null)
    rows = []
    for sel in selections:
        s = per[select(per, sel, classes)]
        if len(s) == 0:
            continue
        _, areas = share_matrices(s)
        regions = [r for r, ok in zip(REGIONS, areas.sum(0) > 0, strict=True) if ok]
        where = {"split": sel.outcome, "selection": selection_label(sel)}
        for fill, d in drops.items():
            joined = s.merge(d, on="path", how="inner")
            if len(joined) < 2:
                continue
            sh, ar = share_matrices(joined, regions)
            dr = joined[[f"drop_{r}" for r in regions]].to_numpy(float)
            ev = evidence(sh, ar, dr, n_boot=n_boot, seed=seed)
            by_share = share_leader(regions, ev["enrichment"][0], ev["enrichment"][1])
            fw = max_t(dr, n_boot=n_boot, seed=seed)  # the leader needs the whole family
            by_ablation = ablation_leader(regions, fw.estimate, fw.low)
            by_lift, n_null = None, 0
            if nulls:
                i, js = paired_all(list(joined["image"]), [list(t["image"]) for t in nulls])
                n_null = len(i)
                if n_null >= 2:
                    cols = [f"share_{r}" for r in regions]
                    ref = np.stack(
                        [t[cols].to_numpy(float)[j] for t, j in zip(nulls, js, strict=True)]
                    )
                    lifted = lift(joined[cols].to_numpy(float)[i], ref, n_boot, seed)
                    by_lift = lift_leader(regions, lifted)
            rows.append({
                **where, "fill": fill, "n": len(joined),
                "spearman": ev["spearman"][0], "spearman_low": ev["spearman"][1],
                "spearman_high": ev["spearman"][2],
                "ablation_leader": by_ablation or "", "share_leader": by_share or "",
                "lift_leader": by_lift or "", "n_null": n_null,
                "recovered": verdict(by_ablation, by_lift, judged[0] and n_null >= 2) or "",
                "judged": judged[1] or ("yes" if n_null >= 2 else "no null model"),
            })  # fmt: skip
    return pd.DataFrame(rows)
