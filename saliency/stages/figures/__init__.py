"""The figures stage: publication figures and tables from a run's files only.

Writes ``RUN/figures/<name>.pdf`` and ``.png`` for every figure whose inputs exist (the
region x cell matrix, the average-face grid, difference maps, ablation effects, share and
enrichment, score distributions, evaluation, validation overall and per cell, image
attributes), the group accuracy table as ``group_accuracy.{csv,md,tex}``,
and ``figures.json``: each figure's files, caption and image count, and each skipped
figure with the command that makes its inputs (the report reads it).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from saliency.analysis.tables import paper_table, to_latex, to_markdown
from saliency.atomic import atomic_write, atomic_write_json, atomic_write_text
from saliency.configs.output import FiguresConfig
from saliency.rundir import eval_dir, figures_dir, record, require_run, saliency_dir
from saliency.stages.contract import Result, StageContext


@dataclass
class FiguresResult:
    out: Path
    written: list[dict] = field(default_factory=list)  # name, files, caption, n
    skipped: list[dict] = field(default_factory=list)  # name, reason


def _context(run: Path, split: str) -> tuple[list[str], list[str], list[str]]:
    """Explained methods (in the registry's order), cells and classes of the run."""
    from saliency.methods.names import METHODS

    found = {p.parent.name for p in saliency_dir(run, split).glob("*/meta.json")}
    methods = [m for m in METHODS if m in found]
    groups = eval_dir(run, split) / "group_accuracy.csv"
    cells, classes = [], []
    if groups.is_file():
        g = pd.read_csv(groups, keep_default_na=False)
        cells = list(g.loc[g["kind"] == "cell", "selection"])
        classes = list(g.loc[g["kind"] == "class", "selection"])
    if not classes and methods:
        meta = json.loads((saliency_dir(run, split, methods[0]) / "meta.json").read_text())
        classes = meta["classes"]
    return methods, cells, classes


def _save(fig, stem: Path, formats: tuple[str, ...], dpi: int) -> list[str]:
    import matplotlib.pyplot as plt

    files = []
    # lay the figure out once (constrained layout, at the figure's own dpi; positions are
    # fractions of the page, so they hold at any dpi), then keep that layout for every
    # format: otherwise each savefig lays it out again and draws twice
    fig.draw_without_rendering()
    fig.set_layout_engine(None)  # (None, not "none": a placeholder engine draws twice too)
    for f in formats:
        path = stem.with_suffix(f".{f}")
        atomic_write(path, lambda tmp, f=f: fig.savefig(tmp, format=f, dpi=dpi))
        files.append(path.name)
    plt.close(fig)
    return files


def _tables(run: Path, out: Path, split: str) -> list[dict]:
    src = eval_dir(run, split) / "group_accuracy.csv"
    if not src.is_file():
        return []
    table = paper_table(pd.read_csv(src, keep_default_na=False))
    caption = (
        f"Accuracy per class, subgroup and cell on the {split} split, with 95% Wilson intervals."
    )
    atomic_write_text(out / "group_accuracy.csv", table.to_csv(index=False))
    atomic_write_text(out / "group_accuracy.md", to_markdown(table))
    atomic_write_text(out / "group_accuracy.tex", to_latex(table, caption))
    n = int(table.loc[table["selection"] == "all", "n"].max()) if len(table) else 0
    files = ["group_accuracy.csv", "group_accuracy.md", "group_accuracy.tex"]
    return [{"name": "group_accuracy", "files": files, "caption": caption, "n": n}]


def builders(cfg: FiguresConfig, methods, cells, classes) -> list[tuple[str, object]]:
    """``(name, build)`` for every figure; ``build()`` returns a FigureSpec or a reason."""
    from saliency.stages.figures import attributes as figure_attributes
    from saliency.stages.figures import evaluation as figure_eval
    from saliency.stages.figures import maps as figure_maps
    from saliency.stages.figures import matrix as figure_matrix
    from saliency.stages.figures import regions as figure_regions
    from saliency.stages.figures import thresholds as figure_thresholds
    from saliency.stages.figures import validation as figure_validation
    from saliency.stages.figures import validation_cells as figure_validation_cells
    from saliency.viz.style import WIDTHS

    # grids of faces and of histograms need a page's width; bars fit either
    run, w, n = cfg.run, WIDTHS["double"], cfg.min_n
    bars = WIDTHS[cfg.width]
    return [
        ("region_cell_matrix", lambda: figure_matrix.region_cell_matrix(run, w)),
        ("average_grid", lambda: figure_maps.average_grid(run, methods, cells, w, n)),
        ("difference_incorrect_minus_correct",
         lambda: figure_maps.incorrect_minus_correct(run, methods, cells, w, n)),
        ("difference_cell_minus_all",
         lambda: figure_maps.cell_minus_all(run, methods, cells, w, n)),
        ("ablation_effects", lambda: figure_regions.ablation_effects(run, cells, bars)),
        ("share_enrichment", lambda: figure_regions.share_enrichment(run, methods, cells, w)),
        ("score_distributions", lambda: figure_regions.score_distributions(run, classes, w)),
        ("evaluation", lambda: figure_eval.evaluation(run, cfg.split, w)),
        ("threshold_errors", lambda: figure_thresholds.threshold_errors(run, cfg.split, w)),
        ("validation", lambda: figure_validation.validation(run, w)),
        ("validation_cells", lambda: figure_validation_cells.validation_cells(run, w)),
        ("attributes", lambda: figure_attributes.attributes(run, w)),
    ]  # fmt: skip


def run(cfg: FiguresConfig) -> FiguresResult:
    """Build and write every figure whose inputs exist; record the others with a reason."""
    import matplotlib.pyplot as plt

    from saliency.viz.style import PAPER_RC

    run_dir = require_run(cfg.run)
    cfg = dataclasses.replace(cfg, run=run_dir)
    out = figures_dir(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = FiguresResult(out)
    methods, cells, classes = _context(run_dir, cfg.split)
    with plt.rc_context(PAPER_RC):
        for name, build in builders(cfg, methods, cells, classes):
            spec = build()
            if isinstance(spec, str):
                result.skipped.append({"name": name, "reason": spec})
                continue
            files = _save(spec.figure, out / spec.name, cfg.formats, cfg.dpi)
            width = round(float(spec.figure.get_size_inches()[0]), 2)
            result.written.append({"name": spec.name, "files": files, "caption": spec.caption,
                                   "n": spec.n, "width_in": width})  # fmt: skip
    result.written += _tables(run_dir, out, cfg.split)
    atomic_write_json(out / "figures.json", {"figures": result.written, "skipped": result.skipped})
    record(run_dir, "figures", cfg.to_dict())
    return result


def lines(res: FiguresResult) -> list[str]:
    """What the command prints: each figure's files, each skipped one's reason."""
    out = []
    for f in res.written:
        width = f"{f['width_in']:g} in wide, " if f.get("width_in") else ""
        out.append(f"  {f['name']}: {', '.join(f['files'])} ({width}n = {f['n']})")
    out += [f"  skipped {s['name']}: {s['reason']}" for s in res.skipped]
    return out + [f"{len(res.written)} figures and tables -> {res.out}"]


def run_stage(cfg: FiguresConfig, ctx: StageContext) -> Result:
    """The stage contract: the figures of the context's run."""
    res = run(ctx.fill(cfg))
    return Result(res, lines(res))
