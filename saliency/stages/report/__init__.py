"""The report stage: ``RUN/report.html``, one self-contained file a reader can open anywhere.

Images are inline (``data:`` URIs), the style is inline, there are no scripts and no links
outside the file. It holds the configuration and provenance of every command run on the
run, the group accuracy table, every figure of ``RUN/figures/`` with its caption and image
count, the region rankings with intervals, the agreement verdicts, and the images each
stage skipped with their reasons. It reads the files of the stages before it only.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from saliency.analysis.metrics import run_chance_warning
from saliency.atomic import atomic_write_text
from saliency.configs.output import ReportConfig
from saliency.rundir import (
    CONFIG,
    ablation_dir,
    figures_dir,
    record,
    report_path,
    require_run,
    share_dir,
)
from saliency.stages.contract import Result, StageContext
from saliency.stages.report.sections import (
    agreement,
    attributes,
    esc,
    image,
    rankings,
    separability,
    table,
    validation,
    validation_cells,
)

STYLE = """
body { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; max-width: 60em;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { padding: 0.2em 0.6em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #444; }
.warning { background: #fff3cd; border: 1px solid #e0c36c; padding: 0.5em 1em; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; font-size: 0.8em; }
"""


@dataclass
class ReportResult:
    path: Path
    figures: int
    tables: int


def _skipped(run: Path) -> str:
    rows = []
    places = sorted(ablation_dir(run).glob("*/skipped.csv")) + sorted(
        share_dir(run).glob("*/skipped.csv")
    )
    for f in places:
        t = pd.read_csv(f, keep_default_na=False)
        for reason, paths in t.groupby("reason", sort=False)["path"] if len(t) else []:
            more = f", ... ({len(paths) - 10} more)" if len(paths) > 10 else ""
            rows.append({"stage": f"{f.parent.parent.name}/{f.parent.name}", "images": len(paths),
                         "reason": reason, "which": ", ".join(paths[:10]) + more})  # fmt: skip
    if not rows:
        return "<p>No stage skipped an image.</p>"
    return table(pd.DataFrame(rows))


def _model(run: Path) -> str:
    """What the maps explain: the architecture, or for an adopted model its source, output
    handling, Grad-CAM layer and CAM verdict."""
    from saliency.runs import Run

    ckpt = Run(run).checkpoint()
    pre, rec = ckpt.pre, ckpt.adoption
    rows = [("classes (output order)", ", ".join(ckpt.classes)),
            ("input", f"{pre.text}, {pre.color}, mean {list(pre.mean)}, std "
                      f"{list(pre.std)}")]  # fmt: skip
    if rec is None:
        rows += [("architecture", f"{ckpt.arch} (output stride {ckpt.output_stride})"),
                 ("checkpoint", f"epoch {ckpt.epoch}, validation accuracy "
                                f"{ckpt.val_accuracy}")]  # fmt: skip
    else:
        why = ckpt.cam_refusal
        cam = "CAM-ready" if why is None else f"cam refused: {why}"
        what = " ".join(v for v in (rec["format"], rec.get("arch") or rec.get("function")) if v)
        rows += [("adopted", what + (f" from {rec['source']}" if rec["source"] else "")),
                 ("output", _output(rec)),
                 ("explained", rec["explained"]),
                 ("Grad-CAM layer", f"{rec['layer']}: {rec['channels']} channels, "
                                    f"{rec['grid'][0]}x{rec['grid'][1]} grid"),
                 ("CAM", cam)]  # fmt: skip
        if "onnxruntime_max_abs_difference" in rec:
            diff = rec["onnxruntime_max_abs_difference"]
            rows.append(("onnx2torch vs onnxruntime", f"max abs difference {diff:.2g}"))
    return table(pd.DataFrame(rows, columns=["", "model"]))


def _output(rec: dict) -> str:
    """Which output of the adopted model the maps explain, among how many."""
    outs = rec.get("outputs") or []
    text = f"{rec['n_outputs']} logit(s)"
    if rec.get("output_name") is not None:
        others = ", ".join(n for n, _ in outs if n != rec["output_name"])
        text = f"{rec['output_name']} ({text}; the other outputs, {others}, are cut off)"
    if rec.get("output_slice"):
        text += f", columns {rec['output_slice'][0]}:{rec['output_slice'][1]}"
    return text


def _provenance(run: Path) -> str:
    path = run / CONFIG
    if not path.is_file():
        return "<p>No config.json.</p>"
    commands = json.loads(path.read_text()).get("commands", {})
    items = []
    for name, entry in commands.items():
        config = json.dumps(entry.get("config", {}), indent=1, sort_keys=True)
        items.append(
            f"<details><summary>{esc(name)}: {esc(entry.get('time', ''))}, saliency "
            f"{esc(entry.get('saliency_version', ''))}</summary><pre>{esc(config)}</pre>"
            "</details>"
        )
    return "".join(items)


def run(run_dir: str | Path) -> ReportResult:
    """Write ``RUN/report.html`` from the run's files (``saliency figures`` first)."""
    from saliency import __version__

    run_dir = require_run(run_dir)
    manifest = figures_dir(run_dir) / "figures.json"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{manifest} not found; run `saliency figures --run {run_dir}` first"
        )
    listing = json.loads(manifest.read_text())
    record(run_dir, "report", {"figures_json": str(manifest)})  # so the page shows this run
    body = [f"<h1>saliency report: {esc(run_dir.name)}</h1>",
            f"<p>Run folder <code>{esc(run_dir.resolve())}</code>; written "
            f"{_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')} by saliency "
            f"{esc(__version__)}.</p>"]  # fmt: skip
    warning = run_chance_warning(run_dir)
    if warning:
        body.append(f'<p class="warning">Warning: {esc(warning)}</p>')
    n_fig = n_tab = 0
    figures = [f for f in listing["figures"] if f["name"] != "group_accuracy"]
    first = [f for f in figures if f["name"] == "region_cell_matrix"]
    for f in first:  # the question at a glance, before anything else
        body.append("<h2>At a glance: which region matters, for which cell</h2>")
        body.append(_figure(run_dir, f, "Figure 1"))
        n_fig += 1
    for t in [f for f in listing["figures"] if f["name"] == "group_accuracy"]:
        body.append("<h2>Accuracy per class, subgroup and cell</h2>")
        df = pd.read_csv(figures_dir(run_dir) / "group_accuracy.csv", keep_default_na=False)
        body.append(table(df) + f"<p>{esc(t['caption'])} n = {t['n']}.</p>")
        n_tab += 1
    body.append("<h2>Model</h2>" + _model(run_dir))
    body.append("<h2>Figures</h2>")
    for f in [f for f in figures if f["name"] != "region_cell_matrix"]:
        png = next((figures_dir(run_dir) / p for p in f["files"] if p.endswith(".png")), None)
        if png is None or not png.is_file():
            continue
        body.append(_figure(run_dir, f, f"Figure {n_fig + 1}"))
        n_fig += 1
    if listing.get("skipped"):
        body.append("<h3>Figures not made</h3>" + table(pd.DataFrame(listing["skipped"])))
    sections = (
        ("Decidability and error rates at the threshold, per group", separability),
        ("Region rankings (ablation)", rankings),
        ("Ablation and attribution share: agreement", agreement),
        ("Validation: are the explanations right?", validation),
        ("Explanation quality per cell", validation_cells),
        ("Image attributes and errors per cell", attributes),
    )
    for title, section in sections:
        parts = section(run_dir)
        if parts:
            body.append(f"<h2>{esc(title)}</h2>" + "".join(parts))
            n_tab += sum(part.count("<table>") for part in parts)
    body.append("<h2>Skipped images</h2>" + _skipped(run_dir))
    body.append("<h2>Configuration and provenance</h2>" + _provenance(run_dir))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>saliency report: {esc(run_dir.name)}</title><style>{STYLE}</style>"
            "</head><body>" + "\n".join(body) + "</body></html>\n")  # fmt: skip
    path = report_path(run_dir)
    atomic_write_text(path, page)
    return ReportResult(path, n_fig, n_tab)


def _figure(run_dir: Path, f: dict, label: str) -> str:
    """One figure of ``figures.json`` with its caption and image count."""
    png = next((figures_dir(run_dir) / p for p in f["files"] if p.endswith(".png")), None)
    if png is None or not png.is_file():
        return ""
    return (f"<figure>{image(png)}<figcaption>{label}. {esc(f['caption'])} Rests on "
            f"{f['n']} images.</figcaption></figure>")  # fmt: skip


def run_stage(cfg: ReportConfig, ctx: StageContext) -> Result:
    """The stage contract: the report of the context's run."""
    res = run(ctx.run if ctx.run is not None else cfg.run)
    return Result(res, [f"report with {res.figures} figures and {res.tables} tables -> {res.path}"])
