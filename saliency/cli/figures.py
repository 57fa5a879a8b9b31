"""``saliency figures`` and ``saliency report``: publication figures, and one HTML file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "figures",
        help="publication figures (PDF and PNG) and tables from a run's files",
        description="Writes RUN/figures/: the average-face grid, difference maps, ablation "
        "effects, share and enrichment, score distributions and the evaluation, each as PDF "
        "and PNG, and the group accuracy table as CSV, Markdown and LaTeX. A figure whose "
        "inputs are missing is skipped with the command that makes them.",
    )
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--format", default="pdf,png", help="comma separated: pdf, png")
    p.add_argument("--dpi", type=int, default=300, help="for PNG (default 300)")
    p.add_argument(
        "--width", choices=("single", "double"), default="double",
        help="one-column (3.5 in) or two-column (7 in) paper width; the face and "
        "histogram grids always take two columns",
    )  # fmt: skip
    p.add_argument("--min-n", type=int, default=5, help="grey out panels with fewer images")
    p.set_defaults(func=run_figures)

    r = sub.add_parser(
        "report",
        help="RUN/report.html: one self-contained file (images inline, no network)",
        description="Figures with captions, tables, region rankings, agreement, skipped images "
        "and the provenance of every command; run `saliency figures` first.",
    )
    r.add_argument("--run", required=True, type=Path)
    r.set_defaults(func=run_report)


def run_figures(args: argparse.Namespace) -> int:
    from saliency.stages import figures

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    cfg = figures.FiguresConfig(args.run, formats, args.dpi, args.width, args.min_n)
    return report_figures(figures.run(cfg))


def report_figures(res) -> int:
    for f in res.written:
        width = f"{f['width_in']:g} in wide, " if f.get("width_in") else ""
        print(f"  {f['name']}: {', '.join(f['files'])} ({width}n = {f['n']})")
    for s in res.skipped:
        print(f"  skipped {s['name']}: {s['reason']}")
    print(f"{len(res.written)} figures and tables -> {res.out}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from saliency.stages import report

    return report_report(report.run(args.run))


def report_report(res) -> int:
    print(f"report with {res.figures} figures and {res.tables} tables -> {res.path}")
    return 0
