"""Classification metrics per class, subgroup and cell, each with an interval.

Input is a predictions frame (``label``, ``group``, ``pred``, ``correct``, ``prob_<class>``)
as ``saliency evaluate`` writes it. The positive class for ROC and the one-logit convention
is ``classes[1]``.
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.analysis.stats import newcombe_difference, wilson
from saliency.binomial import at_chance
from saliency.data.cells import cell_column, class_keys, present_groups
from saliency.rundir import eval_dir, train_log


def _nan_to_none(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def proportion(k: int, n: int) -> dict:
    """``{"n", "k", "value", "ci"}``; value and interval are None when n = 0."""
    lo, hi = wilson(k, n)
    return {
        "n": int(n),
        "k": int(k),
        "value": _nan_to_none(k / n if n else math.nan),
        "ci": [_nan_to_none(lo), _nan_to_none(hi)],
    }


def selections(df: pd.DataFrame, classes: list[str]) -> list[tuple[str, str, np.ndarray]]:
    """(name, kind, mask) in the reference order: all, classes, subgroups, cells."""
    out = [("all", "all", np.ones(len(df), bool))]
    out += [(c, "class", (df["label"] == c).to_numpy()) for c in classes]
    groups = present_groups(df)
    out += [(g, "group", (df["group"] == g).to_numpy()) for g in groups]
    keys = class_keys(classes)
    out += [
        (f"{g}_{keys[c]}", "cell", ((df["group"] == g) & (df["label"] == c)).to_numpy())
        for g in groups
        for c in classes
    ]
    return out


def group_table(df: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Accuracy with a 95% Wilson interval for every selection (the reference layout)."""
    rows = []
    correct = df["correct"].to_numpy(bool)
    for name, kind, mask in selections(df, classes):
        p = proportion(int(correct[mask].sum()), int(mask.sum()))
        rows.append(
            {
                "selection": name,
                "kind": kind,
                "n": p["n"],
                "correct": p["k"],
                "accuracy": p["value"],
                "ci_low": p["ci"][0],
                "ci_high": p["ci"][1],
            }
        )
    return pd.DataFrame(rows)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties averaged); None with one class only."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) over all thresholds, from (0,0) to (1,1)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], positive[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp, fp = np.cumsum(y)[distinct], np.cumsum(~y)[distinct]
    tpr = np.r_[0, tp / max(1, y.sum())]
    fpr = np.r_[0, fp / max(1, (~y).sum())]
    return fpr, tpr


def calibration(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> dict:
    """Expected calibration error and the reliability curve over equal-width bins."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        sel = which == b
        if not sel.any():
            continue
        conf, acc = float(confidence[sel].mean()), float(correct[sel].mean())
        ece += sel.mean() * abs(acc - conf)
        bins.append(
            {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "n": int(sel.sum()),
                "confidence": conf,
                "accuracy": acc,
            }
        )
    return {"ece": float(ece), "n_bins": n_bins, "bins": bins}


def _cell_rates(df: pd.DataFrame, classes: list[str]) -> dict:
    """Per cell: accuracy, miss rate (fnr) and the rate at which the subgroup's other
    classes are predicted as this cell's class (fpr)."""
    keys = class_keys(classes)
    out = {}
    for g in present_groups(df):
        in_group = (df["group"] == g).to_numpy()
        for c in classes:
            own = in_group & (df["label"] == c).to_numpy()
            other = in_group & (df["label"] != c).to_numpy()
            as_c = (df["pred"] == c).to_numpy()
            out[f"{g}_{keys[c]}"] = {
                "accuracy": proportion(int((own & as_c).sum()), int(own.sum())),
                "fnr": proportion(int((own & ~as_c).sum()), int(own.sum())),
                "fpr": proportion(int((other & as_c).sum()), int(other.sum())),
            }
    return out


def _per_class(df: pd.DataFrame, classes: list[str]) -> dict:
    out = {}
    for c in classes:
        tp = int(((df["pred"] == c) & (df["label"] == c)).sum())
        n_pred, n_true = int((df["pred"] == c).sum()), int((df["label"] == c).sum())
        precision = tp / n_pred if n_pred else None
        recall = tp / n_true if n_true else None
        f1 = (
            2 * precision * recall / (precision + recall)
            if precision and recall
            else (0.0 if n_pred and n_true else None)
        )
        out[c] = {"precision": precision, "recall": recall, "f1": f1, "support": n_true}
    return out


def _gaps(df: pd.DataFrame, classes: list[str]) -> list[dict]:
    """Accuracy differences with Newcombe intervals: every cell pair, and each cell vs rest."""
    cells = cell_column(df, classes)
    correct = df["correct"].to_numpy(bool)
    names = [n for n in dict.fromkeys(cells) if "_" in n]
    stats = {n: (int(correct[cells == n].sum()), int((cells == n).sum())) for n in sorted(names)}
    rows = []

    def add(a: str, b: str, ka: int, na: int, kb: int, nb: int) -> None:
        d, lo, hi = newcombe_difference(ka, na, kb, nb)
        rows.append(
            {
                "a": a,
                "b": b,
                "difference": _nan_to_none(d),
                "ci": [_nan_to_none(lo), _nan_to_none(hi)],
                "excludes_zero": bool(lo > 0 or hi < 0) if na and nb else None,
            }
        )

    for a in stats:
        ka, na = stats[a]
        add(a, "rest", ka, na, int(correct.sum()) - ka, len(correct) - na)
    for a, b in itertools.combinations(stats, 2):
        add(a, b, *stats[a], *stats[b])
    return rows


def evaluation_metrics(df: pd.DataFrame, classes: list[str], n_bins: int = 15) -> dict:
    """Everything ``metrics.json`` holds (see module docstring for the inputs)."""
    probs = df[[f"prob_{c}" for c in classes]].to_numpy(float)
    correct = df["correct"].to_numpy(bool)
    positive = (df["label"] == classes[1]).to_numpy()
    table = group_table(df, classes)
    confusion = [
        [int(((df["label"] == t) & (df["pred"] == p)).sum()) for p in classes] for t in classes
    ]
    cells = _cell_rates(df, classes)
    ranked = sorted(
        (v["accuracy"]["value"], k) for k, v in cells.items() if v["accuracy"]["value"] is not None
    )
    p_true = probs[np.arange(len(df)), df["label"].map({c: i for i, c in enumerate(classes)})]
    counts = df["label"].value_counts()
    majority = float(counts.max() / len(df)) if len(df) else math.nan
    # with one class present a constant prediction is perfect: chance cannot be judged
    judged_chance = (
        bool(at_chance(int(correct.sum()), len(df), majority)) if len(counts) > 1 else None
    )
    return {
        "n": len(df),
        "classes": classes,
        "loss": float(-np.log(np.clip(p_true, 1e-12, 1.0)).mean()) if len(df) else None,
        "positive_class": classes[1],
        "accuracy": {
            r.selection: {"kind": r.kind, **proportion(r.correct, r.n)} for r in table.itertuples()
        },
        "chance": {  # the majority class's share: what a constant prediction scores
            "level": _nan_to_none(majority),
            "at_chance": judged_chance,
        },
        "cells": cells,
        "hardest_cell": ranked[0][1] if ranked else None,
        "per_class": _per_class(df, classes),
        "roc_auc": {
            "all": roc_auc(probs[:, 1], positive),
            "by_group": {
                g: roc_auc(probs[m, 1], positive[m])
                for g, kind, m in selections(df, classes)
                if kind == "group"
            },
        },
        "calibration": calibration(probs.max(axis=1), correct, n_bins),
        "confusion": {"labels": classes, "rows_true_cols_pred": confusion},
        "gaps": _gaps(df, classes),
    }


def chance_message(metrics: dict, split: str) -> str | None:
    """One line when ``metrics`` (a ``metrics.json``) says the model is at chance, else None."""
    chance = metrics.get("chance") or {}
    if not chance.get("at_chance"):
        return None
    acc = metrics["accuracy"]["all"]
    lo, hi = acc["ci"] if acc["ci"] else (math.nan, math.nan)
    return (
        f"the model is at chance on {split}: accuracy {acc['value']:.1%} [{lo:.1%}, {hi:.1%}] "
        f"includes the majority class's {chance['level']:.1%}; its maps and region effects "
        "show noise, not what it learned"
    )


def run_chance_warning(run: str | os.PathLike) -> str | None:
    """The chance warning of a run, for every command that reads its model or maps.

    From ``RUN/eval/<split>/metrics.json`` (``test`` first; a named evaluation set, another
    data set, says nothing about the run's own maps); without an evaluation, from the
    training log when validation accuracy never left chance. None when neither says so."""
    import json

    from saliency.data.manifest import SPLITS

    run = Path(run)
    own = [p for p in eval_dir(run).glob("*/metrics.json") if p.parent.name in (*SPLITS, "all")]
    found = sorted(own, key=lambda p: p.parent.name != "test")
    for path in found:
        message = chance_message(json.loads(path.read_text()), path.parent.name)
        if message:
            return message
    log = train_log(run)
    if not found and log.is_file():
        at = pd.read_csv(log).get("val_at_chance")
        at = at.dropna() if at is not None else None  # rows from before the column: unknown
        if at is not None and len(at) and at.astype(str).str.lower().eq("true").all():
            return (
                "the model never left chance on validation in training; its maps and region "
                "effects show noise, not what it learned"
            )
    return None
