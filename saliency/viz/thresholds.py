"""Panels of how a score separates the classes: d' per selection before and after an
ablation, and error rates (or their gaps) over thresholds on the score. Pure panels:
``(data, ax) -> ax``; the figures stage assembles them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes


def dprime_panel(ax: Axes, table: pd.DataFrame, selections: list[str]) -> Axes:
    """d' before (open marker, colour C0) and after (filled, C1) with their 95% intervals,
    one row per selection (top to bottom in the order given), labelled with both values.
    ``table``: indexed by selection, with ``dprime_before``/``_after`` and ``_low``/``_high``
    columns (an ablation's summary rows). Draws lines and markers only (no patches)."""
    shown = [s for s in selections if s in table.index]
    y = np.arange(len(shown))[::-1].astype(float)
    for when, color, face, dy in (("before", "C0", "white", 0.14), ("after", "C1", "C1", -0.14)):
        v = table.loc[shown, f"dprime_{when}"].to_numpy(float)
        low = table.loc[shown, f"dprime_{when}_low"].to_numpy(float)
        high = table.loc[shown, f"dprime_{when}_high"].to_numpy(float)
        ax.errorbar(v, y + dy, xerr=np.abs([v - low, high - v]), fmt="o", color=color,
                    mfc=face, ms=3, lw=0.8, capsize=0)  # fmt: skip
    labels = []
    for s in shown:
        b, a = table.loc[s, "dprime_before"], table.loc[s, "dprime_after"]
        b, a = round(b, 1) + 0.0, round(a, 1) + 0.0  # + 0.0: no "-0.0"
        text = f"{b:.1f}\u2192{a:.1f}".replace("-", "\u2212")  # the axes' minus sign
        labels.append(f"{s}  {text}" if np.isfinite([b, a]).all() else f"{s}  -")
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.6, len(shown) - 0.4)
    ax.axvline(0, color="0.5", linewidth=0.5, linestyle=":")
    ax.tick_params(axis="y", length=0)
    return ax


def rate_panel(
    ax: Axes, thresholds: np.ndarray, curves: list[dict], operating: float, ylabel: str,
    reference: float | None = None,
) -> Axes:  # fmt: skip
    """Curves over thresholds with their interval bands: each of ``curves`` has ``label``,
    ``value``, ``low``, ``high`` (arrays like ``thresholds``), ``color`` and optionally
    ``linestyle``; the operating threshold as a dashed vertical line, ``reference`` (e.g. 0
    for gaps) as a dotted horizontal one."""
    for c in curves:
        ls = c.get("linestyle", "-")
        ax.plot(thresholds, c["value"], color=c["color"], linestyle=ls, label=c["label"])
        ax.fill_between(thresholds, c["low"], c["high"], color=c["color"], alpha=0.15,
                        linewidth=0)  # fmt: skip
    ax.axvline(operating, color="black", linewidth=0.6, linestyle="--")
    if reference is not None:
        ax.axhline(reference, color="0.5", linewidth=0.5, linestyle=":")
    ax.set_xlim(thresholds[0], thresholds[-1])
    ax.set_ylabel(ylabel)
    return ax
