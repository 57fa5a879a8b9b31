"""The attributes stage: image attributes per test image and their relation to errors per
cell (DESIGN.md, "Image attributes").

Reads the evaluation ``RUN/eval/<split>/`` (predictions.csv; its images' paths are relative
to the evaluated manifest's folder, recorded in metrics.json) and the region masks (the
evaluated manifest's ``mask`` column, or ``--manifest``, matched by image path). Writes
``RUN/attributes/``:

- ``per_image.csv``: path, label, group, cell, correct and the three attributes
  (:mod:`saliency.analysis.attributes.measure` defines them);
- ``skipped.csv``: the images that could not be measured, with the reason;
- ``summary.csv``: each attribute's distribution per selection (all, each cell);
- ``bins.csv``: accuracy per quantile bin of each attribute, per selection, Wilson intervals;
- ``gaps.csv``: each cell's gap raw, as an AME without and with the attributes, their
  change, and on a matched subset (:mod:`saliency.analysis.attributes.gap`);
- ``attributes.png``: a preview of the figure (:mod:`saliency.viz.attributes`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from saliency.analysis.attributes import ATTRIBUTES
from saliency.analysis.attributes.gap import cell_gaps
from saliency.analysis.attributes.measure import measure_files
from saliency.analysis.attributes.tables import accuracy_bins, distributions
from saliency.atomic import atomic_write_text
from saliency.configs.attributes import AttributesConfig
from saliency.data.cells import cell_column
from saliency.data.masks import match_masks
from saliency.rundir import attributes_dir, record, require_run
from saliency.runs import Run
from saliency.stages.contract import Result, StageContext


@dataclass
class AttributesResult:
    out: Path
    split: str
    per_image: pd.DataFrame
    skipped: pd.DataFrame
    summary: pd.DataFrame
    bins: pd.DataFrame
    gaps: pd.DataFrame


def evaluated_rows(run: Path, split: str) -> tuple[pd.DataFrame, Path]:
    """The predictions of ``RUN/eval/<split>/`` with absolute image paths under ``image``,
    and the manifest they came from; a missing evaluation is one clear error."""
    found = {e.name: e for e in Run(run).evaluations()}
    ev = found.get(split)
    if ev is None or not (ev.folder / "predictions.csv").is_file() or not ev.manifest:
        have = f" (it has: {', '.join(found)})" if found else ""
        raise FileNotFoundError(
            f"{run} has no evaluation of {split!r}{have}: run `saliency evaluate --run {run} "
            f"--split {split}` first"
        )
    pred = pd.read_csv(ev.folder / "predictions.csv", keep_default_na=False)
    manifest = Path(ev.manifest)
    pred["image"] = [str(manifest.parent / p) for p in pred["path"]]
    return pred, manifest


def run(cfg: AttributesConfig, progress: Callable[[int], None] | None = None) -> AttributesResult:
    """Measure, summarize and relate the attributes of the evaluated images; write
    ``RUN/attributes/``. ``progress(n)`` hears the images measured."""
    run_dir = require_run(cfg.run)
    pred, manifest = evaluated_rows(run_dir, cfg.split)
    classes = [c.removeprefix("prob_") for c in pred.columns if c.startswith("prob_")]
    masks = match_masks(pred["image"].tolist(), cfg.manifest or manifest)
    measured = measure_files(pred["image"], masks, cfg.workers, progress)
    rows = pd.DataFrame({
        "path": pred["path"], "label": pred["label"].astype(str),
        "group": pred["group"].astype(str) if "group" in pred.columns else "",
    })  # fmt: skip
    rows["cell"] = cell_column(rows, classes)
    rows["correct"] = pred["correct"].astype(str).str.lower().eq("true")
    ok = (measured["reason"] == "").to_numpy()
    if not ok.any():
        raise ValueError(
            f"none of the {len(rows)} images of {cfg.split!r} could be measured, e.g. "
            f"{rows['path'].iloc[0]}: {measured['reason'].iloc[0]}"
        )
    per = pd.concat([rows, measured[list(ATTRIBUTES)]], axis=1)[ok].reset_index(drop=True)
    skipped = rows[~ok].assign(reason=measured["reason"][~ok]).reset_index(drop=True)
    attrs = list(ATTRIBUTES)
    summary = distributions(per, attrs, cfg.bootstrap, cfg.seed)
    bins = accuracy_bins(per, attrs, cfg.bins)
    gaps = cell_gaps(per, attrs, cfg.penalty, cfg.ridge, cfg.bootstrap, cfg.seed, cfg.match_bins)
    out = attributes_dir(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in (("per_image", per), ("skipped", skipped), ("summary", summary),
                        ("bins", bins), ("gaps", gaps)):  # fmt: skip
        atomic_write_text(out / f"{name}.csv", table.to_csv(index=False, float_format="%.6g"))
    _preview(out / "attributes.png", per, summary, bins, gaps)
    record(run_dir, "attributes", cfg.to_dict())
    return AttributesResult(out, cfg.split, per, skipped, summary, bins, gaps)


def _preview(path: Path, per, summary, bins, gaps) -> None:
    import matplotlib.pyplot as plt

    from saliency.viz.attributes import attributes_figure
    from saliency.viz.style import PAPER_RC, WIDTHS, paper_figure, save_figure

    with plt.rc_context(PAPER_RC):  # the publication style, as the figures stage draws
        fig = paper_figure(WIDTHS["double"], 4.6 + 0.25 * per["cell"].nunique())
        attributes_figure(fig, per, summary, bins, gaps)
        fig.suptitle("Image attributes per cell and their relation to errors")
        save_figure(fig, path, dpi=150)


def _points(v: float) -> str:
    return "-" if pd.isna(v) else f"{v * 100:+.1f}"


def lines(res: AttributesResult) -> list[str]:
    """What the command prints: counts, the attributes' means per selection, each cell's gap
    with and without the attributes, and where the files are."""
    out = [f"attributes of {len(res.per_image)} {res.split} images"
           + (f" ({len(res.skipped)} skipped: reasons in skipped.csv)" if len(res.skipped)
              else "")]  # fmt: skip
    means = res.summary.pivot(index="selection", columns="attribute", values="mean")
    means = means.reindex(index=list(dict.fromkeys(res.summary["selection"])),
                          columns=list(ATTRIBUTES))  # fmt: skip
    means.insert(0, "n", res.summary.drop_duplicates("selection").set_index("selection")["n"])
    out.append("means per selection (skin brightness in L*, the others as shares):")
    out.append(means.to_string(float_format=lambda v: f"{v:.3f}"))
    if len(res.gaps):
        g = res.gaps
        out.append(
            "gap of each cell (its accuracy minus the rest's, points; 95% intervals): "
            "raw, as an AME without and with the attributes, the change, matched"
        )
        for r in g.itertuples():
            out.append(
                f"  {r.cell:>6s} raw {_points(r.gap)} [{_points(r.gap_low)}, "
                f"{_points(r.gap_high)}]  AME {_points(r.ame)} -> {_points(r.ame_adjusted)} "
                f"[{_points(r.ame_adjusted_low)}, {_points(r.ame_adjusted_high)}]  change "
                f"{_points(r.change)} [{_points(r.change_low)}, {_points(r.change_high)}]"
                f"{' (excludes 0)' if r.change_excludes_zero else ''}  matched "
                f"{_points(r.matched_gap)} [{_points(r.matched_gap_low)}, "
                f"{_points(r.matched_gap_high)}] (n = {r.matched_n} + {r.matched_n})"
            )
        out.append(f"  (penalty {g['penalty'].iloc[0]}; adjusted for: "
                   f"{g['attributes'].iloc[0] or 'nothing: no attribute varies'})")  # fmt: skip
    return out + [f"-> {res.out}"]


def run_stage(cfg: AttributesConfig, ctx: StageContext) -> Result:
    """The stage contract: the attributes of the context's run (a progress bar)."""
    cfg = ctx.fill(cfg)
    res = run(cfg, ctx.progress("attributes", 0))
    return Result(res, lines(res))
