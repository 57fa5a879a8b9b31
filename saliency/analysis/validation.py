"""The tables of ``saliency validate``, from per-image data (no models, no files).

- :func:`drop_evidence`: each region's mean drop of the true class's probability on
  deletion, with simultaneous 95% intervals over the regions (criterion 1 of "recovered").
- :func:`lift_rows`: lambda per region over a reference model (the null, or the
  re-initialized floor), with intervals and the margin over the runner-up.
- :func:`method_verdict`: one method's verdict under the definition of
  :mod:`saliency.analysis.recovered`, and under the enrichment definition it replaced;
  :func:`null_verdict`, the K nulls' own (pooled), and :func:`withhold`.
- :func:`curve_summary`: areas under the deletion and insertion curves per method against a
  random order, with paired bootstrap intervals of the differences.
- :func:`summarize_steps`: the cascading randomization's per-image similarities averaged per
  method and step, with intervals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from saliency.analysis.familywise import max_t
from saliency.analysis.recovered import (
    ablation_leader,
    enrichment_verdict,
    lift,
    lift_leader,
    paired_all,
    share_leader,
    verdict,
)
from saliency.analysis.share.evidence import evidence
from saliency.analysis.similarity import MEASURES
from saliency.analysis.stats import bootstrap


def drop_evidence(
    drops: pd.DataFrame | Sequence[pd.DataFrame],
    regions: Sequence[str],
    n_boot: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """``[3, R]`` (estimate, low, high) of the mean drop per region from per-image drops
    (columns ``drop_<region>``, NaN where the region had no area); the intervals are
    simultaneous over the regions (bootstrap max-t, :mod:`saliency.analysis.familywise`).
    A list of K tables (K nulls' drops, with ``path``) gives the K models' average for the
    images in all of them, its draws resampling the models too."""
    cols = [f"drop_{r}" for r in regions]
    if isinstance(drops, pd.DataFrame):
        return max_t(drops[cols].to_numpy(float), n_boot=n_boot, seed=seed).stacked()
    _, js = paired_all(list(drops[0]["path"]), [list(d["path"]) for d in drops])
    stack = np.stack([d[cols].to_numpy(float)[j] for d, j in zip(drops, js, strict=True)])
    return max_t(stack, n_boot=n_boot, seed=seed).stacked()


def shares_of(per: pd.DataFrame, regions: Sequence[str]) -> np.ndarray:
    return per[[f"share_{r}" for r in regions]].to_numpy(float)


def paired_lift(
    per: pd.DataFrame | Sequence[pd.DataFrame],
    reference: pd.DataFrame | Sequence[pd.DataFrame],
    regions: Sequence[str],
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray] | None, int]:
    """Lift of ``per``'s shares over ``reference``'s, each one table or one per model (K
    nulls: their average, with their spread in the interval,
    :func:`saliency.analysis.recovered.lift`), for the images in all of them (``image``
    columns); ``(None, n)`` when fewer than two images pair up."""
    left = [per] if isinstance(per, pd.DataFrame) else list(per)
    right = [reference] if isinstance(reference, pd.DataFrame) else list(reference)
    if not left or not right:
        return None, 0
    i, js = paired_all(list(left[0]["image"]), [list(t["image"]) for t in left[1:] + right])
    if len(i) < 2:
        return None, len(i)
    at = [i, *js]
    stacks = [shares_of(t, regions)[j] for t, j in zip(left + right, at, strict=True)]
    a, b = np.stack(stacks[: len(left)]), np.stack(stacks[len(left) :])
    return lift(a[0] if len(a) == 1 else a, b[0] if len(b) == 1 else b, n_boot, seed), len(i)


def pooled(tables: Sequence[pd.DataFrame], key: str, columns: Sequence[str]) -> pd.DataFrame:
    """The K nulls as one: per ``key`` (image) present in every table, the mean of
    ``columns`` over the tables, the other columns from the first table (its order)."""
    first = tables[0]
    i, js = paired_all(list(first[key]), [list(t[key]) for t in tables])
    out = first.iloc[i].reset_index(drop=True).copy()
    cols = list(columns)
    out[cols] = np.mean(
        [t[cols].to_numpy(float)[j] for t, j in zip(tables, js, strict=True)], axis=0
    )
    return out


def lift_rows(
    method: str, reference: str, regions: Sequence[str], lifted: dict[str, np.ndarray], n: int
) -> list[dict]:
    """Long rows (one per region) of a lift: lambda and the margin over the largest other."""
    lam, margin = lifted["lambda"], lifted["margin"]
    return [
        {"method": method, "reference": reference, "region": r, "n": n,
         "lambda": lam[0, k], "lambda_low": lam[1, k], "lambda_high": lam[2, k],
         "margin": margin[0, k], "margin_low": margin[1, k], "margin_high": margin[2, k]}
        for k, r in enumerate(regions)
    ]  # fmt: skip


def withhold(row: dict, null_recovered: str) -> dict:
    """A method's verdict row (:func:`method_verdict`) given the null's own verdict: granted
    only when the null recovers nothing. When the null, trained on shuffled labels,
    "recovers" a region itself, the same evidence in the real model proves nothing: the
    verdict is withheld (``recovered`` empty, the region it would have named in
    ``withheld``) and ``verdict`` says why."""
    out = dict(row, null_recovered=null_recovered, withheld="")
    if null_recovered:
        out["withheld"] = row["recovered"]
        out["recovered"] = ""
        out["correct"] = None
        out["verdict"] = (f"withheld: the null model (shuffled labels) itself recovers "
                          f"{null_recovered}; more nulls (`saliency null --seeds K`) or more "
                          "images can tell")  # fmt: skip
    return out


def null_verdict(
    method: str,
    regions: Sequence[str],
    drops: Sequence[pd.DataFrame],
    shares: Sequence[pd.DataFrame],
    floor: pd.DataFrame,
    judged: tuple[bool, str],
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[dict, list[str]]:
    """The K nulls' own verdict (:func:`method_verdict`, no planted region) from each null's
    per-image drops (``path``, ``drop_<region>``) and shares (``image``, ``share_<region>``,
    ``area_<region>``) and the floor's shares: the nulls' average drop and their average
    share's lift over the floor, each draw resampling the images and then the nulls, so an
    association that one permutation left behind is judged against the nulls' spread and
    one that every permutation leaves (the recipe's) is not. This is the verdict the model's
    must not share (:func:`withhold`). With K > 1, also each null's own verdict (reported,
    not used): ``(row, ["nothing", "brows", ...])``."""
    drops, shares = list(drops), list(shares)
    drop = drop_evidence(drops if len(drops) > 1 else drops[0], regions, n_boot, seed)
    lifted, _ = paired_lift(shares, floor, regions, n_boot, seed)
    per = pooled(shares, "image", [f"share_{r}" for r in regions])  # for the enrichment
    row = method_verdict(method, regions, drop, per, lifted, judged, None, n_boot, seed)
    each = []
    if len(shares) == len(drops) > 1:
        for d, s in zip(drops, shares, strict=True):
            one, _ = paired_lift(s, floor, regions, n_boot, seed)
            v = method_verdict(method, regions, drop_evidence(d, regions, n_boot, seed), s, one,
                               judged, None, n_boot, seed)  # fmt: skip
            each.append(v["recovered"] or "nothing")
    return row, each


def method_verdict(
    method: str,
    regions: Sequence[str],
    drop: np.ndarray,
    per: pd.DataFrame,
    lifted: dict[str, np.ndarray] | None,
    judged: tuple[bool, str],
    planted: list[str] | None,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """One method's verdict row: the ablation leader (``drop [3, R]``), the lift leader
    over the null (None without a null: no verdict), the recovered region, the enrichment
    leader and the verdict of the earlier definition, and whether each names the planted
    region."""
    by_ablation = ablation_leader(regions, drop[0], drop[1])
    areas = per[[f"area_{r}" for r in regions]].to_numpy(float)
    ev = evidence(shares_of(per, regions), areas, n_boot=n_boot, seed=seed)
    by_enrichment = share_leader(regions, ev["enrichment"][0], ev["enrichment"][1])
    by_lift = lift_leader(regions, lifted) if lifted is not None else None
    new = verdict(by_ablation, by_lift, judged[0]) if lifted is not None else None
    old = enrichment_verdict(by_ablation, by_enrichment, judged[0])
    first = planted[0] if planted else None
    return {
        "method": method, "planted": "+".join(planted or []), "n": len(per),
        "ablation_leader": by_ablation or "", "lift_leader": by_lift or "",
        "recovered": new or "", "enrichment_leader": by_enrichment or "",
        "recovered_old": old or "",
        "verdict": ("no null model" if lifted is None else judged[1] or "judged"),
        "correct": (new == first) if first and lifted is not None and judged[0] else None,
        "correct_old": (old == first) if first and judged[0] else None,
    }  # fmt: skip


def curve_summary(
    areas: dict[str, tuple[np.ndarray, np.ndarray]], n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per method: mean deletion and insertion areas ``[N]`` with intervals, and their
    differences from the ``random`` entry's (paired over images). A method passes when its
    deletion area is below random's and its insertion area above, both intervals excluding 0."""
    rd, ri = areas["random"]
    rows = []
    for method, (d, i) in areas.items():
        vals = np.stack([d, i, d - rd, i - ri], 1)
        est, lo, hi = bootstrap(vals, n_boot=n_boot, seed=seed)
        passed = bool(hi[2] < 0 and lo[3] > 0) if method != "random" else None
        rows.append({
            "method": method, "n": len(d),
            "deletion_auc": est[0], "deletion_low": lo[0], "deletion_high": hi[0],
            "insertion_auc": est[1], "insertion_low": lo[1], "insertion_high": hi[1],
            "deletion_vs_random": est[2], "deletion_vs_random_low": lo[2],
            "deletion_vs_random_high": hi[2], "insertion_vs_random": est[3],
            "insertion_vs_random_low": lo[3], "insertion_vs_random_high": hi[3],
            "passed": passed,
        })  # fmt: skip
    return pd.DataFrame(rows)


def summarize_steps(per_image: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Mean of each similarity measure per method and step, with 95% intervals over images
    (``per_image``: method, step, block, and one column per measure)."""
    rows = []
    for (method, step, block), t in per_image.groupby(["method", "step", "block"], sort=False):
        est, lo, hi = bootstrap(t[list(MEASURES)].to_numpy(float), n_boot=n_boot, seed=seed)
        row = {"method": method, "step": step, "block": block, "n": len(t)}
        for k, m in enumerate(MEASURES):
            row |= {m: est[k], f"{m}_low": lo[k], f"{m}_high": hi[k]}
        rows.append(row)
    return pd.DataFrame(rows)
