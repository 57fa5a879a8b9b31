"""The validation figure: lift over the null per region, the cascading randomization and the
deletion and insertion curves, per method. Read from ``RUN/validation/`` only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.data.regions import REGIONS
from saliency.rundir import validation_dir
from saliency.stages.figures.spec import FigureSpec
from saliency.viz.bars import interval_bars
from saliency.viz.style import OKABE_ITO, paper_figure

RANDOM_COLOR = "#7f7f7f"


def _read(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, keep_default_na=False)
    except pd.errors.EmptyDataError:  # a table with no rows (no null and no floor: no lift)
        return None


def method_colors(methods: list[str]) -> dict[str, str]:
    return {m: OKABE_ITO[k % len(OKABE_ITO)] for k, m in enumerate(methods)}


def validation(run: Path, width: float) -> FigureSpec | str:
    """Three panels: lambda over the null per region (95% intervals), the mean Spearman of
    each method's absolute maps with the trained model's as blocks are re-initialized from the
    head down, and the mean deletion and insertion curves against a random order."""
    out = validation_dir(run)
    steps = _read(out / "randomization_steps.csv")
    curves = _read(out / "curves.csv")
    if steps is None or curves is None:
        return f"no validation: run `saliency validate --run {run}`"
    info = json.loads((out / "validation.json").read_text())
    lift = _read(out / "lift.csv")
    methods = list(dict.fromkeys(steps["method"]))
    colors = method_colors(methods)
    fig = paper_figure(width, 2.9)
    ax_lift, ax_rand, ax_curve = fig.subplots(1, 3, width_ratios=[1.2, 1.2, 1.0])
    has_lift = lift is not None and len(lift) and (lift["reference"] == "null").any()
    if has_lift:
        t = lift[lift["reference"] == "null"]
        bars = pd.DataFrame({"category": t["region"], "series": t["method"], "n": t["n"],
                             "value": t["lambda"], "low": t["lambda_low"],
                             "high": t["lambda_high"]})  # fmt: skip
        regions = [r for r in REGIONS if r in set(t["region"])]
        interval_bars(ax_lift, bars, regions, [m for m in methods if m in set(t["method"])],
                      colors, "lift over the null, logit units")  # fmt: skip
        lo = max(-8.0, float(np.nanmin(t["lambda_low"])) - 0.5)
        hi = min(12.0, float(np.nanmax(t["lambda_high"])) + 0.5)
        ax_lift.set_ylim(lo, hi)  # the logit's clip (±27.6) would flatten every other bar
        ax_lift.tick_params(axis="x", rotation=45)
        planted = "+".join(info.get("planted") or [])
        ax_lift.set_title("lift" + (f" (planted: {planted})" if planted else ""))
        ax_lift.legend(frameon=False, fontsize="x-small")
    else:
        ax_lift.text(0.5, 0.5, "no null model:\nrun `saliency null`", ha="center",
                     va="center", transform=ax_lift.transAxes)  # fmt: skip
        ax_lift.set_axis_off()
    blocks = list(dict.fromkeys(steps.sort_values("step")["block"]))
    x = np.arange(1, len(blocks) + 1)
    for k, m in enumerate(methods):  # dashes keep coincident lines (cam = gradcam) visible
        s = steps[steps["method"] == m].sort_values("step")
        ax_rand.plot(s["step"], s["spearman_abs"], color=colors[m], label=m, marker=".",
                     linestyle=("-", "--", ":")[k % 3])  # fmt: skip
        ax_rand.fill_between(s["step"], s["spearman_abs_low"], s["spearman_abs_high"],
                             color=colors[m], alpha=0.2, linewidth=0)  # fmt: skip
    threshold = info["settings"]["threshold"]
    ax_rand.axhline(threshold, color="black", linewidth=0.5, linestyle="--")
    ax_rand.set_xticks(x, blocks, rotation=90)
    low = float(steps[["spearman_abs", "spearman_abs_low"]].min().min())  # can be negative
    ax_rand.set_ylim(min(-0.1, low - 0.05), 1.05)
    ax_rand.set_ylabel("Spearman of |maps| with trained")
    ax_rand.set_title("cascading randomization")
    ax_rand.legend(frameon=False, fontsize="x-small")
    frac = sorted(set(curves["fraction"]))
    for m in [*methods, "random"]:
        c = curves[curves["method"] == m]
        color = colors.get(m, RANDOM_COLOR)
        for kind, style in (("deletion", "-"), ("insertion", "--")):
            k = c[c["curve"] == kind].sort_values("fraction")
            ax_curve.plot(
                k["fraction"],
                k["probability"],
                style,
                color=color,
                label=f"{m} {kind}" if m == "random" or kind == "deletion" else None,
            )
    ax_curve.set_xlim(0, frac[-1])
    ax_curve.set_ylim(0, 1)
    ax_curve.set_xlabel("fraction of pixels")
    ax_curve.set_ylabel("probability of the target class")
    ax_curve.set_title("deletion (—), insertion (- -)")
    ax_curve.legend(frameon=False, fontsize="x-small")
    n_rand = int(steps["n"].max())
    n_curves = _read(out / "curves_summary.csv")
    n = max(n_rand, int(lift["n"].max()) if has_lift else 0,
            int(n_curves["n"].max()) if n_curves is not None else 0)  # fmt: skip
    caption = (
        "Left: lift of each method's share of positive attribution over the null model's "
        "(logit units, 95% paired bootstrap intervals). Middle: mean Spearman "
        "correlation of the absolute maps, the trained model's against those of copies "
        f"re-initialized from the head down ({n_rand} "
        f"images; dashed: the pass threshold {threshold}). Right: mean probability of the "
        "target class as pixels are deleted or inserted in order of attribution, and in a "
        f"random order ({int(n_curves['n'].max()) if n_curves is not None else '?'} images)."
    )
    return FigureSpec("validation", fig, caption, n)
