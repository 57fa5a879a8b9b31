"""Summaries of an ablation: effects per region and selection, with intervals and tests.

For every region and every selection (all, each subgroup, each class, each cell): n; the
accuracy before and after and its change with a 95% bootstrap interval over images; the flip
rate (prediction changed); the mean change of the true class's probability with
*simultaneous* 95% intervals over the regions of the table (one family per selection) and
its adjusted p-value ``p_fw``, both from one bootstrap max-t
(:mod:`saliency.analysis.familywise`): the effect that decides which region leads; the mean
change of the score (logit units) with a bootstrap interval; and, for the accuracy change,
McNemar's exact p-value and its Holm adjustment across all rows (``mcnemar_p_holm``).
Where a selection holds both classes (all, each subgroup): the decidability d' of the
log-odds of ``classes[1]`` before and after, and its change, each with a 95% bootstrap
interval from the same images resampled within each class
(:mod:`saliency.analysis.separability`; NaN for a class or a cell).
Images where a region has zero area (nothing was filled) are left out of that region's rows
and counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from saliency.analysis.familywise import ADJUSTMENT, max_t
from saliency.analysis.separability import paired_dprime
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
            positive = (s["label"] == classes[1]).to_numpy()
            dprimes = paired_dprime(ablation_log_odds(s, classes, "before"),
                                    ablation_log_odds(s, classes, "after"), positive,
                                    n_boot=n_boot, seed=seed)  # fmt: skip
            rows.append({
                "region": region, "selection": name, "n": len(s),
                "zero_area_images": int(zero.sum()) if name == "all" else np.nan,
                "accuracy_before": before.mean(), "accuracy_after": after.mean(),
                "accuracy_change": est[0], "accuracy_change_low": lo[0],
                "accuracy_change_high": hi[0],
                "flip_rate": float((s["pred_before"] != s["pred_after"]).mean()),
                "prob_change": est[1], "prob_change_low": lo[1], "prob_change_high": hi[1],
                "score_change": est[2], "score_change_low": lo[2], "score_change_high": hi[2],
                **dprimes,
                "mcnemar_p": mcnemar_exact(
                    int((before & ~after).sum()), int((~before & after).sum())
                ),
            })  # fmt: skip
    out = pd.DataFrame(rows)
    if len(out):
        out["mcnemar_p_holm"] = holm(out["mcnemar_p"].to_numpy())
        out = _familywise(out, per, classes, n_boot, seed)
    return out


def ablation_log_odds(per: pd.DataFrame, classes: list[str], when: str) -> np.ndarray:
    """The log-odds of ``classes[1]`` ``before`` or ``after`` (``when``) of per-image rows:
    their ``logit_<when>`` column; rows stored before that column existed (NaN there)
    take it from the true class's probability, ``+-log(p / (1 - p))`` (exact up to the
    stored float32 probability, which saturates beyond about 16 logits)."""
    sign = np.where(per["label"] == classes[1], 1.0, -1.0)
    p = np.clip(per[f"prob_{when}"].to_numpy(np.float64), 1e-7, 1 - 1e-7)
    from_prob = sign * np.log(p / (1 - p))
    if f"logit_{when}" not in per:
        return from_prob
    z = pd.to_numeric(per[f"logit_{when}"], errors="coerce").to_numpy(np.float64)
    return np.where(np.isnan(z), from_prob, z)


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
    change, ``p_fw`` is the adjusted p-value of the same test; d' before and after, and its
    change with a paired 95% interval (NaN for a class or a cell)."""
    s = summary[summary["selection"] == selection].copy()
    s["effect"] = -s["prob_change"]
    s["excludes_zero"] = (s["prob_change_high"] < 0) | (s["prob_change_low"] > 0)
    cols = ["region", "n", "effect", "prob_change_low", "prob_change_high", "excludes_zero",
            "p_fw", "family", "adjustment", "accuracy_change", "flip_rate", "dprime_before",
            "dprime_after", "dprime_change", "dprime_change_low", "dprime_change_high"]  # fmt: skip
    return s.sort_values("effect", ascending=False)[cols].reset_index(drop=True)
