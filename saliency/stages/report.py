"""The report stage: ``RUN/report.html``, one self-contained file a reader can open anywhere.

Images are inline (``data:`` URIs), the style is inline, there are no scripts and no links
outside the file. It holds the configuration and provenance of every command run on the
run, the group accuracy table, every figure of ``RUN/figures/`` with its caption and image
count, the region rankings with intervals, the agreement verdicts, and the images each
stage skipped with their reasons. It reads the files of the stages before it only.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from saliency.analysis.familywise import describe
from saliency.analysis.metrics import run_chance_warning
from saliency.atomic import atomic_write_text
from saliency.configs.output import ReportConfig
from saliency.rundir import (
    CONFIG,
    ablation_dir,
    agreement_dir,
    figures_dir,
    record,
    report_path,
    require_run,
    share_dir,
    validation_dir,
)
from saliency.stages.contract import Result, StageContext

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


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in r) + "</tr>"
        for r in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_esc(path.stem)}" src="data:image/png;base64,{data}">'


def _interval(v, lo, hi, scale: float = 1.0, fmt: str = "+.3f") -> str:
    return f"{v * scale:{fmt}} [{lo * scale:{fmt}}, {hi * scale:{fmt}}]"


def _rankings(run: Path) -> list[str]:
    parts = []
    for f in sorted(ablation_dir(run).glob("ranking_*_*.csv")):
        t = pd.read_csv(f, keep_default_na=False)
        t = t[t["selection"] == "all"] if "selection" in t.columns else t
        shown = pd.DataFrame({
            "region": t["region"], "n": t["n"],
            "drop of true-class probability [simultaneous 95% CI]": [
                _interval(e, -h, -lo) for e, lo, h in
                zip(t["effect"], t["prob_change_low"], t["prob_change_high"], strict=True)],
            "interval excludes 0": t["excludes_zero"],
        })  # fmt: skip
        if "p_fw" in t.columns:  # rankings written before the family-wise rule have none
            shown["p (max-t, adjusted)"] = t["p_fw"].map("{:.3g}".format).to_numpy()
        fill, mode = f.stem.split("_")[1:3]
        how = (f"<p>{_esc(describe(int(t['family'].max())))}: a region leads only when its "
               "interval excludes 0 for the whole family.</p>" if "family" in t.columns and len(t)
               else "")  # fmt: skip
        parts.append(
            f"<h3>{_esc(mode)} with {_esc(fill)} fill, all test images</h3>" + _table(shown) + how
        )
    return parts


def _agreement(run: Path) -> list[str]:
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
            _interval(v, lo, h, fmt=".2f") for v, lo, h in
            zip(t["spearman"], t["spearman_low"], t["spearman_high"], strict=True)])  # fmt: skip
        parts.append(f"<h3>{_esc(f.stem)}</h3>" + _table(shown))
    return parts


def _validation(run: Path) -> list[str]:
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
            "only.</p>" + _table(t)
        )
    for name, title in (
        ("randomization_verdicts", "Cascading model-parameter randomization"),
        ("curves_summary", "Deletion and insertion, against a random order"),
    ):
        f = out / f"{name}.csv"
        if f.is_file():
            parts.append(f"<h3>{title}</h3>" + _table(pd.read_csv(f, keep_default_na=False)))
    info = out / "validation.json"
    if info.is_file():
        for note in json.loads(info.read_text()).get("notes", []):
            parts.append(f'<p class="warning">{_esc(note)}</p>')
    return parts


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
    return _table(pd.DataFrame(rows))


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
    return _table(pd.DataFrame(rows, columns=["", "model"]))


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
            f"<details><summary>{_esc(name)}: {_esc(entry.get('time', ''))}, saliency "
            f"{_esc(entry.get('saliency_version', ''))}</summary><pre>{_esc(config)}</pre>"
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
    body = [f"<h1>saliency report: {_esc(run_dir.name)}</h1>",
            f"<p>Run folder <code>{_esc(run_dir.resolve())}</code>; written "
            f"{_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')} by saliency "
            f"{_esc(__version__)}.</p>"]  # fmt: skip
    warning = run_chance_warning(run_dir)
    if warning:
        body.append(f'<p class="warning">Warning: {_esc(warning)}</p>')
    n_fig = n_tab = 0
    tables = [f for f in listing["figures"] if f["name"] == "group_accuracy"]
    for t in tables:
        body.append("<h2>Accuracy per class, subgroup and cell</h2>")
        df = pd.read_csv(figures_dir(run_dir) / "group_accuracy.csv", keep_default_na=False)
        body.append(_table(df) + f"<p>{_esc(t['caption'])} n = {t['n']}.</p>")
        n_tab += 1
    body.append("<h2>Model</h2>" + _model(run_dir))
    body.append("<h2>Figures</h2>")
    for k, f in enumerate(x for x in listing["figures"] if x["name"] != "group_accuracy"):
        png = next((figures_dir(run_dir) / p for p in f["files"] if p.endswith(".png")), None)
        if png is None or not png.is_file():
            continue
        body.append(f"<figure>{_image(png)}<figcaption>Figure {k + 1}. {_esc(f['caption'])} "
                    f"Rests on {f['n']} images.</figcaption></figure>")  # fmt: skip
        n_fig += 1
    if listing.get("skipped"):
        body.append("<h3>Figures not made</h3>" + _table(pd.DataFrame(listing["skipped"])))
    rankings = _rankings(run_dir)
    if rankings:
        body.append("<h2>Region rankings (ablation)</h2>" + "".join(rankings))
        n_tab += len(rankings)
    agreement = _agreement(run_dir)
    if agreement:
        body.append("<h2>Ablation and attribution share: agreement</h2>" + "".join(agreement))
        n_tab += len(agreement)
    validation = _validation(run_dir)
    if validation:
        body.append("<h2>Validation: are the explanations right?</h2>" + "".join(validation))
        n_tab += len(validation)
    body.append("<h2>Skipped images</h2>" + _skipped(run_dir))
    body.append("<h2>Configuration and provenance</h2>" + _provenance(run_dir))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>saliency report: {_esc(run_dir.name)}</title><style>{STYLE}</style>"
            "</head><body>" + "\n".join(body) + "</body></html>\n")  # fmt: skip
    path = report_path(run_dir)
    atomic_write_text(path, page)
    return ReportResult(path, n_fig, n_tab)


def run_stage(cfg: ReportConfig, ctx: StageContext) -> Result:
    """The stage contract: the report of the context's run."""
    res = run(ctx.run if ctx.run is not None else cfg.run)
    return Result(res, [f"report with {res.figures} figures and {res.tables} tables -> {res.path}"])
