"""The group accuracy table for papers: CSV, Markdown and LaTeX (booktabs), with intervals.

Input is ``RUN/eval/<split>/group_accuracy.csv`` (selection, kind, n, correct, accuracy,
ci_low, ci_high); rows keep its order (all, classes, subgroups, cells).
"""

from __future__ import annotations

import pandas as pd

KIND_NAMES = {"all": "all", "class": "class", "group": "subgroup", "cell": "cell"}


def _pct(v: float) -> str:
    return "-" if v != v else f"{100 * v:.1f}"


def paper_table(groups: pd.DataFrame) -> pd.DataFrame:
    """Selection, kind, n, accuracy (%) and its 95% Wilson interval (%) as text columns."""
    return pd.DataFrame({
        "selection": groups["selection"],
        "kind": [KIND_NAMES.get(k, k) for k in groups["kind"]],
        "n": groups["n"].astype(int),
        "accuracy (%)": [_pct(v) for v in groups["accuracy"]],
        "95% CI (%)": [f"[{_pct(lo)}, {_pct(hi)}]" if lo == lo else "-"
                       for lo, hi in zip(groups["ci_low"], groups["ci_high"], strict=True)],
    })  # fmt: skip


def to_markdown(table: pd.DataFrame) -> str:
    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---:" if c in ("n",) else "---" for c in table.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in r) + " |" for r in table.itertuples(index=False)]
    return "\n".join([head, rule, *rows]) + "\n"


TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#",
               "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}"}  # fmt: skip


def _tex(text: str) -> str:
    return "".join(TEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: pd.DataFrame, caption: str) -> str:
    """A booktabs table (``\\usepackage{booktabs}``), one rule between kinds of rows."""
    cols = "ll" + "r" * (len(table.columns) - 2)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_tex(caption)}}}",
             rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(_tex(c) for c in table.columns) + r" \\", r"\midrule"]  # fmt: skip
    previous = None
    for r in table.itertuples(index=False):
        if previous is not None and r.kind != previous:
            lines.append(r"\addlinespace")
        lines.append(" & ".join(_tex(str(v)) for v in r) + r" \\")
        previous = r.kind
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
