"""The report's sections: HTML tables of the stages' result files (ablation rankings,
agreement, validation overall and per cell, image attributes), and the escaping, table and
image helpers the page is built with. Each section reads its stage's files only and is
empty when they do not exist."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from saliency.analysis.familywise import describe
from saliency.rundir import (
    ablation_dir,
    agreement_dir,
    attributes_dir,
    eval_dir,
    validation_dir,
)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>"
        for r in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{esc(path.stem)}" src="data:image/png;base64,{data}">'


def interval(v, lo, hi, scale: float = 1.0, fmt: str = "+.3f") -> str:
    return f"{v * scale:{fmt}} [{lo * scale:{fmt}}, {hi * scale:{fmt}}]"


def rankings(run: Path) -> list[str]:
    parts = []
    for f in sorted(ablation_dir(run).glob("ranking_*_*.csv")):
        t = pd.read_csv(f, keep_default_na=False)
        t = t[t["selection"] == "all"] if "selection" in t.columns else t
        shown = pd.DataFrame({
            "region": t["region"], "n": t["n"],
            "drop of true-class probability [simultaneous 95% CI]": [
                interval(e, -h, -lo) for e, lo, h in
                zip(t["effect"], t["prob_change_low"], t["prob_change_high"], strict=True)],
            "interval excludes 0": t["excludes_zero"],
        })  # fmt: skip
        if "p_fw" in t.columns:  # rankings written before the family-wise rule have none
            shown["p (max-t, adjusted)"] = t["p_fw"].map("{:.3g}".format).to_numpy()
        if "dprime_change" in t.columns:  # d' of the class-1 logit, before -> after
            shown["d' before -> after, change [95% CI]"] = [
                f"{b:.2f} -> {a:.2f}, {interval(c, lo, h, fmt='+.2f')}" for b, a, c, lo, h in
                zip(t["dprime_before"], t["dprime_after"], t["dprime_change"],
                    t["dprime_change_low"], t["dprime_change_high"], strict=True)]  # fmt: skip
        fill, mode = f.stem.split("_")[1:3]
        how = (f"<p>{esc(describe(int(t['family'].max())))}: a region leads only when its "
               "interval excludes 0 for the whole family.</p>" if "family" in t.columns and len(t)
               else "")  # fmt: skip
        parts.append(
            f"<h3>{esc(mode)} with {esc(fill)} fill, all test images</h3>" + table(shown) + how
        )
    return parts


def agreement(run: Path) -> list[str]:
    parts = []
    for f in sorted(agreement_dir(run).glob("*.csv")):
        t = pd.read_csv(f, keep_default_na=False)
        t = t[t["split"] == "all"]
        if not len(t):
            continue
        cols = ["selection", "fill", "n", "ablation_leader", "share_leader", "lift_leader",
                "recovered", "judged"]  # fmt: skip
        shown = t[[c for c in cols if c in t.columns]].copy()
        shown = shown.rename(columns={"share_leader": "enrichment_leader", "judged": "verdict"})
        shown.insert(3, "Spearman [95% CI]", [
            interval(v, lo, h, fmt=".2f") for v, lo, h in
            zip(t["spearman"], t["spearman_low"], t["spearman_high"], strict=True)])  # fmt: skip
        parts.append(f"<h3>{esc(f.stem)}</h3>" + table(shown))
    return parts


def validation(run: Path) -> list[str]:
    """``saliency validate``'s verdicts, randomization and curve tables, when it has run."""
    out = validation_dir(run)
    parts = []
    v = out / "verdicts.csv"
    if v.is_file():
        t = pd.read_csv(v, keep_default_na=False)
        parts.append(
            "<p>Recovered: the region whose deletion costs the true class the most (its "
            "simultaneous 95% interval over the regions, bootstrap max-t, above 0) is also the "
            "leader of the method's lift over the null model (shuffled labels), with the "
            "lift's margin over the runner-up above 0 (95% paired bootstrap), and the null's "
            "own verdict is nothing; when the null itself recovers a region the verdict is "
            "withheld and the row says why. With several nulls (<code>nulls</code>), the lift "
            "is over their average and its interval carries their spread; "
            "<code>null_each</code> gives each null's own verdict. The old definition "
            "(ablation leader = enrichment leader) is shown beside it for comparison "
            "only.</p>" + table(t)
        )
    for name, title in (
        ("randomization_verdicts", "Cascading model-parameter randomization"),
        ("curves_summary", "Deletion and insertion, against a random order"),
    ):
        f = out / f"{name}.csv"
        if f.is_file():
            parts.append(f"<h3>{title}</h3>" + table(pd.read_csv(f, keep_default_na=False)))
    info = out / "validation.json"
    if info.is_file():
        for note in json.loads(info.read_text()).get("notes", []):
            parts.append(f'<p class="warning">{esc(note)}</p>')
    return parts


def validation_cells(run: Path) -> list[str]:
    """``validate``'s per-cell table (``validation/cells.csv``), one row per method and
    measure the verdicts read (deletion, insertion, randomization of |maps|), one column per
    cell: the mean with its interval, starred where the cell differs from the rest."""
    path = validation_dir(run) / "cells.csv"
    if not path.is_file():
        return []
    t = pd.read_csv(path, keep_default_na=False, na_values=[""])
    t = t[t["measure"].isin(["deletion_auc", "insertion_auc", "spearman_abs"])]
    if not len(t):
        return []
    names = list(dict.fromkeys(t["cell"]))
    rows = []
    for (method, measure), g in t.groupby(["method", "measure"], sort=False):
        g = g.set_index("cell")
        row = {"method": method, "measure": measure}
        for c in names:
            if c in g.index:
                r = g.loc[c]
                star = " *" if str(r["differs"]).lower() == "true" else ""
                row[c] = interval(r["mean"], r["low"], r["high"], fmt=".3f") + star
        rows.append(row)
    counts = "; ".join(
        f"{what} on " + ", ".join(f"{c} {int(n)}" for c, n in zip(g["cell"], g["n"], strict=True))
        for what, g in (("curves", t[t["measure"] == "deletion_auc"]),
                        ("randomization", t[t["measure"] == "spearman_abs"]))
        if len(g) for g in [g[g["method"] == g["method"].iloc[0]]]
    )  # fmt: skip
    note = (
        f"<p>Images: {esc(counts)}. "
        "Per cell of the validation subset (taken from the cells in turn): the areas under "
        "the deletion curve (lower: more faithful) and the insertion curve (higher), and the "
        "Spearman correlation of the absolute maps with every block re-initialized (lower: "
        "the maps depend on the weights), with 95% bootstrap intervals. *: the cell minus the "
        f"other images excludes zero ({esc(str(t['adjustment'].iloc[0]))}); a cell with fewer "
        "than 8 images is not judged. Every measure, with the differences, is in "
        "<code>validation/cells.csv</code>.</p>"
    )
    return [note + table(pd.DataFrame(rows).fillna("-"))]


def attributes(run: Path) -> list[str]:
    """``attributes``'s gap table (``attributes/gaps.csv``): each cell's accuracy gap with
    and without the image attributes, and on a matched subset."""
    path = attributes_dir(run) / "gaps.csv"
    if not path.is_file():
        return []
    t = pd.read_csv(path, keep_default_na=False, na_values=[""])
    note = (
        "<p>Each cell's accuracy minus the rest's: raw; as an average marginal effect from a "
        "penalized logistic regression of correctness on the cells (unadjusted) and on the "
        "cells and the standardized attributes (adjusted: skin brightness, hair over the face, "
        "face area), with the change and its paired bootstrap interval; and on a subset "
        "matched on the attributes' bins. A change whose interval excludes zero means the "
        "attributes explain part of the cell's gap.</p>"
    )
    pts = 100.0
    shown = pd.DataFrame({
        "cell": t["cell"], "n": t["n"],
        "gap, points [95% CI]": [interval(v, lo, h, pts, "+.1f") for v, lo, h in
                                 zip(t["gap"], t["gap_low"], t["gap_high"], strict=True)],
        "AME unadjusted -> adjusted": [f"{a * pts:+.1f} -> {b * pts:+.1f}" for a, b in
                                       zip(t["ame"], t["ame_adjusted"], strict=True)],
        "change [95% CI]": [interval(v, lo, h, pts, "+.1f") for v, lo, h in
                            zip(t["change"], t["change_low"], t["change_high"], strict=True)],
        "matched gap [95% CI] (n)": [
            f"{interval(v, lo, h, pts, '+.1f')} ({int(m)} + {int(m)})" for v, lo, h, m in
            zip(t["matched_gap"], t["matched_gap_low"], t["matched_gap_high"], t["matched_n"],
                strict=True)],
    })  # fmt: skip
    return [note + table(shown)]


def separability(run: Path, split: str = "test") -> list[str]:
    """``evaluate``'s d' per group and overall, and each class's error rate per group at the
    operating threshold with the gaps between groups (``eval/<split>/``)."""
    folder = eval_dir(run, split)
    parts = []
    sep = folder / "separability.csv"
    if sep.is_file():
        t = pd.read_csv(sep, keep_default_na=False, na_values=[""])
        shown = pd.DataFrame({
            "selection": t["selection"], "n": [f"{a} + {b}" for a, b in
                                               zip(t["n_0"], t["n_1"], strict=True)],
            f"mean logit, {t['class_0'].iloc[0]}": t["mean_0"].map("{:+.2f}".format),
            f"mean logit, {t['class_1'].iloc[0]}": t["mean_1"].map("{:+.2f}".format),
            "d' [95% CI]": [interval(v, lo, h, fmt=".2f") for v, lo, h in
                            zip(t["dprime"], t["ci_low"], t["ci_high"], strict=True)],
        })  # fmt: skip
        parts.append(
            "<p>Decidability d' = (mean of class 1's logit - class 0's) / sqrt of their mean "
            "variance, on the model's log-odds of the second class, for all images and within "
            "each group (its two cells); 95% bootstrap intervals, images resampled within each "
            "class. Larger: the classes' scores overlap less.</p>" + table(shown)
        )
    thr = folder / "threshold_errors.csv"
    if thr.is_file():
        t = pd.read_csv(thr, keep_default_na=False, na_values=[""])
        rates, gaps = t[t["kind"] == "error_rate"], t[t["kind"] == "gap"]
        shown = pd.DataFrame({
            "selection": rates["selection"], "class": rates["class"],
            "errors / n": [f"{int(e)} / {int(n)}" for e, n in
                           zip(rates["errors"], rates["n"], strict=True)],
            "error rate [Wilson 95% CI]": [interval(v, lo, h, 100, ".1f") for v, lo, h in
                                           zip(rates["value"], rates["ci_low"],
                                               rates["ci_high"], strict=True)],
        })  # fmt: skip
        parts.append(
            f"<p>Each class's error rate within each group at the operating threshold (logit "
            f"{float(rates['threshold'].iloc[0]):g}), in percent.</p>" + table(shown)
        )
        if len(gaps):
            shown = pd.DataFrame({
                "groups": gaps["selection"], "class": gaps["class"],
                "difference of error rates, points [Newcombe 95% CI]": [
                    interval(v, lo, h, 100, "+.1f") for v, lo, h in
                    zip(gaps["value"], gaps["ci_low"], gaps["ci_high"], strict=True)],
            })  # fmt: skip
            parts.append("<p>The gaps between groups, class by class.</p>" + table(shown))
    return parts
