"""Error rates per group at a threshold on the score, and their gaps between groups.

The score is the log-odds of ``classes[1]`` (logit units, as in
:mod:`saliency.analysis.separability`). At threshold ``t`` an image is predicted
``classes[1]`` when its score is above ``t``, so

- class 0's error rate within a group is the share of the group's class-0 images with
  score > t (they are called class 1), and
- class 1's error rate is the share of its class-1 images with score <= t.

The operating threshold is 0 (probability 0.5): the rule by which ``predictions.csv``'s
``pred`` is made (a one-logit model predicts class 1 when its logit is above 0, a two-logit
model when ``z_1 > z_0``); no run records another. Rates carry 95% Wilson intervals, and
the gap between two groups' rates for the same class (``rate_a - rate_b``) Newcombe's
hybrid score interval (:mod:`saliency.analysis.stats`). Krishnapriya et al. (2019): one ROC
per group hides what a fixed threshold does to each group, so the rates are also given as
curves over thresholds (:func:`error_curves`).
"""

from __future__ import annotations

import itertools

import numpy as np

from saliency.analysis.stats import newcombe_difference, wilson

__all__ = ["OPERATING", "error_counts", "error_curves", "gap_curves", "threshold_rows"]

OPERATING = 0.0  # logit 0 = probability 0.5: the rule that makes ``pred``


def error_counts(scores, positive, thresholds) -> tuple[np.ndarray, int, np.ndarray, int]:
    """``(errors_0 [T], n_0, errors_1 [T], n_1)`` at each threshold: class 0's images with
    score above it, class 1's at or below it."""
    scores = np.asarray(scores, np.float64)
    pos = np.asarray(positive, bool)
    t = np.atleast_1d(np.asarray(thresholds, np.float64))
    s0, s1 = np.sort(scores[~pos]), np.sort(scores[pos])
    errors_0 = len(s0) - np.searchsorted(s0, t, side="right")  # score > t
    errors_1 = np.searchsorted(s1, t, side="right")  # score <= t
    return errors_0, len(s0), errors_1, len(s1)


def _groups(groups) -> tuple[np.ndarray, list[str]]:
    groups = np.asarray(groups, dtype=object).astype(str)
    return groups, ["all", *sorted(set(groups.tolist()) - {""})]


def error_curves(
    scores, positive, groups, thresholds, confidence: float = 0.95
) -> dict[tuple[str, int], dict[str, np.ndarray]]:
    """Per (group, class k) with ``group`` all or a subgroup: ``n``, ``errors``, ``rate``,
    ``low`` and ``high`` (Wilson) at each threshold (arrays ``[T]``; NaN rates where the
    cell is empty)."""
    scores, pos = np.asarray(scores, np.float64), np.asarray(positive, bool)
    groups, names = _groups(groups)
    out = {}
    for g in names:
        m = np.ones(len(scores), bool) if g == "all" else groups == g
        e0, n0, e1, n1 = error_counts(scores[m], pos[m], thresholds)
        for k, (e, n) in enumerate(((e0, n0), (e1, n1))):
            ci = np.array([wilson(int(x), n, confidence) for x in e]).reshape(-1, 2)
            rate = e / n if n else np.full(len(e), np.nan)
            out[(g, k)] = {"n": n, "errors": e, "rate": rate, "low": ci[:, 0], "high": ci[:, 1]}
    return out


def threshold_rows(
    scores, positive, groups, classes: list[str], cells: dict[tuple[str, int], str],
    threshold: float = OPERATING, confidence: float = 0.95,
) -> list[dict]:  # fmt: skip
    """The table at ``threshold``: one ``error_rate`` row per (group, class) (``group`` all
    or a subgroup) and one ``gap`` row per class and pair of subgroups (``group`` minus
    ``versus``). Columns: kind, selection (a cell's name, the class's for all, ``A_F - B_F``
    for a gap), class, group, versus, threshold, n, errors, n_versus, errors_versus, value,
    ci_low, ci_high. ``cells[(group, k)]`` names group ``group``'s cell of class ``k``."""
    curves = error_curves(scores, positive, groups, [threshold], confidence)
    names = list(dict.fromkeys(g for g, _ in curves))
    rows = []
    for g in names:
        for k in (0, 1):
            c = curves[(g, k)]
            rows.append({"kind": "error_rate", "selection": classes[k] if g == "all" else
                         cells[(g, k)], "class": classes[k], "group": g, "versus": "",
                         "threshold": threshold, "n": c["n"], "errors": int(c["errors"][0]),
                         "n_versus": np.nan, "errors_versus": np.nan, "value": c["rate"][0],
                         "ci_low": c["low"][0], "ci_high": c["high"][0]})  # fmt: skip
    for k in (0, 1):
        for a, b in itertools.combinations([g for g in names if g != "all"], 2):
            ca, cb = curves[(a, k)], curves[(b, k)]
            ka, kb = int(ca["errors"][0]), int(cb["errors"][0])
            d, low, high = newcombe_difference(ka, ca["n"], kb, cb["n"], confidence)
            rows.append({"kind": "gap", "selection": f"{cells[(a, k)]} - {cells[(b, k)]}",
                         "class": classes[k], "group": a, "versus": b, "threshold": threshold,
                         "n": ca["n"], "errors": ka, "n_versus": cb["n"], "errors_versus": kb,
                         "value": d, "ci_low": low, "ci_high": high})  # fmt: skip
    return rows


def gap_curves(
    curves: dict[tuple[str, int], dict[str, np.ndarray]], confidence: float = 0.95
) -> dict[tuple[str, str, int], dict[str, np.ndarray]]:
    """Per (group a, group b, class k), every pair of subgroups: ``value`` (a's rate minus
    b's), ``low`` and ``high`` (Newcombe) at each threshold of ``curves``."""
    names = list(dict.fromkeys(g for g, _ in curves if g != "all"))
    out = {}
    for k in (0, 1):
        for a, b in itertools.combinations(names, 2):
            ca, cb = curves[(a, k)], curves[(b, k)]
            got = np.array([newcombe_difference(int(x), ca["n"], int(y), cb["n"], confidence)
                            for x, y in zip(ca["errors"], cb["errors"], strict=True)])  # fmt: skip
            got = got.reshape(-1, 3)
            out[(a, b, k)] = {"value": got[:, 0], "low": got[:, 1], "high": got[:, 2]}
    return out
