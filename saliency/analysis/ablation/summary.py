"""Summaries of an ablation: effects per region and selection, with intervals and tests.

For every region and every selection (all, each subgroup, each class, each cell): n; the
accuracy before and after and its change with a 95% bootstrap interval over images; the flip
rate (prediction changed); the mean change of the true class's probability with
*simultaneous* 95% intervals over the regions of the table (one family per selection) and
its adjusted p-value ``p_fw``, both from one bootstrap max-t
(:mod:`saliency.analysis.familywise`): the effect that decides which region leads; the mean
change of the score (logit units) with a bootstrap interval; and, for the accuracy change,
McNemar's exact p-value and its Holm adjustment across all rows (``mcnemar_p_holm``).
Images where a region has zero area (nothing was filled) are left out of that region's rows
and counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from saliency.analysis.familywise import ADJUSTMENT, max_t
from saliency.analysis.stats import bootstrap, holm, mcnemar_exact
from saliency.data.cells import standard_selections


def summarize(
    per: pd.DataFrame, classes: list[str], n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """One row per (region, selection) of the per-image table (see the module docstring)."""
    rows = []
    for region, sub in per.groupby("region", sort=False):
        zero = sub["region_area"] == 0
        sub = sub[~zero].reset_index(drop=True)
        for name, mask in standard_selections(sub, classes):
            s = sub[mask]
            if len(s) == 0:
                continue
            before, after = s["correct_before"].to_numpy(), s["correct_after"].to_numpy()
            effects = np.stack(
                [after.astype(float) - before, s["prob_after"] - s["prob_before"],
                 s["score_after"] - s["score_before"]], axis=1,
            )  # fmt: skip
            est, lo, hi = bootstrap(effects, n_boot=n_boot, seed=seed)
            rows.append({
                "region": region, "selection": name, "n": len(s),
                "zero_area_images": int(zero.sum()) if name == "all" else np.nan,
                "accuracy_before": before.mean(), "accuracy_after": after.mean(),
                "accuracy_change": est[0], "accuracy_change_low": lo[0],
                "accuracy_change_high": hi[0],
                "flip_rate": float((s["pred_before"] != s["pred_after"]).mean()),
                "prob_change": est[1], "prob_change_low": lo[1], "prob_change_high": hi[1],
                "score_change": est[2], "score_change_low": lo[2], "score_change_high": hi[2],
                "mcnemar_p": mcnemar_exact(
                    int((before & ~after).sum()), int((~before & after).sum())
                ),
            })  # fmt: skip
    out = pd.DataFrame(rows)
    if len(out):
        out["mcnemar_p_holm"] = holm(out["mcnemar_p"].to_numpy())
        out = _familywise(out, per, classes, n_boot, seed)
    return out


def _familywise(
    out: pd.DataFrame, per: pd.DataFrame, classes: list[str], n_boot: int, seed: int
) -> pd.DataFrame:
    """``out`` with each selection's probability-change intervals made simultaneous over its
    regions, ``p_fw`` (the max-t adjusted p-value of no change), ``family`` (how many
    regions were compared) and ``adjustment``: the images resampled jointly for all regions
    (NaN where a region had zero area)."""
    change = (per["prob_after"] - per["prob_before"]).where(per["region_area"] > 0)
    wide = per.assign(_change=change).pivot(index="path", columns="region", values="_change")
    regions = [r for r in dict.fromkeys(per["region"]) if r in wide.columns]
    wide = wide[regions]
    meta = per.drop_duplicates("path").set_index("path").loc[wide.index].reset_index()
    out = out.assign(p_fw=np.nan, family=0, adjustment=ADJUSTMENT)
    for name, mask in standard_selections(meta, classes):
        values = wide.to_numpy(float)[mask]
        if len(values) == 0:
            continue
        fw = max_t(values, n_boot=n_boot, seed=seed)
        for k, region in enumerate(regions):
            row = (out["region"] == region) & (out["selection"] == name)
            out.loc[row, ["prob_change_low", "prob_change_high", "p_fw", "family"]] = (
                fw.low[k], fw.high[k], fw.p[k], len(regions))  # fmt: skip
    return out


def ranking(summary: pd.DataFrame, selection: str = "all") -> pd.DataFrame:
    """Regions ordered by effect on ``selection``: the largest drop of the true class's
    probability first; ``excludes_zero`` says whether its simultaneous interval excludes no
    change, ``p_fw`` is the adjusted p-value of the same test."""
    s = summary[summary["selection"] == selection].copy()
    s["effect"] = -s["prob_change"]
    s["excludes_zero"] = (s["prob_change_high"] < 0) | (s["prob_change_low"] > 0)
    cols = ["region", "n", "effect", "prob_change_low", "prob_change_high", "excludes_zero",
            "p_fw", "family", "adjustment", "accuracy_change", "flip_rate"]  # fmt: skip
    return s.sort_values("effect", ascending=False)[cols].reset_index(drop=True)
