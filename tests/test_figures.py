"""`saliency figures` and `saliency report` on the hand-weighted brows run: every figure is
written and not blank, panels that share a scale share it, difference maps are centred at
zero, no two labels overlap, and the report is one self-contained file."""

import html
import itertools
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from PIL import Image

from saliency.cli import main

FIGURES = (
    "average_grid", "difference_incorrect_minus_correct", "difference_cell_minus_all",
    "ablation_effects", "share_enrichment", "score_distributions", "evaluation", "validation",
)  # fmt: skip


@pytest.fixture(scope="module")
def study(brows_reader_run, tmp_path_factory):
    """Every stage before the figures, on a private copy of the reader run."""
    run = tmp_path_factory.mktemp("figures") / "run"
    shutil.copytree(brows_reader_run, run, ignore=shutil.ignore_patterns(
        "saliency", "ablation", "share", "averages", "agreement", "figures", "eval"))  # fmt: skip
    r, quiet = str(run), ["--workers", "0"]
    assert main(["evaluate", "--run", r, *quiet]) == 0
    assert main(["explain", "--run", r, "--methods", "cam,gradcam,ig", "--ig-steps", "8",
                 "--ig-baseline", "blur", *quiet]) == 0  # fmt: skip
    for split in ("correct", "incorrect"):
        assert main(["average", "--run", r, "--split", split, *quiet]) == 0
    assert main(["average", "--run", r, "--split", "incorrect", "--contrast", "correct",
                 "--permutations", "50", *quiet]) in (0, 1)  # fmt: skip
    for cell in ("A_F", "A_M", "B_F", "B_M"):
        assert main(["average", "--run", r, "--group", cell, "--contrast", "rest",
                     "--permutations", "50", *quiet]) == 0  # fmt: skip
    assert main(["average", "--run", r, "--group", "all", *quiet]) == 0
    assert main(["share", "--run", r, "--bootstrap", "100", *quiet]) == 0
    assert main(["ablate", "--run", r, *quiet]) == 0
    assert main(["agreement", "--run", r, "--bootstrap", "100"]) == 0
    _null_and_validate(run)
    assert main(["figures", "--run", r, "--dpi", "120", "--min-n", "3"]) == 0
    return run


def _null_and_validate(run) -> None:
    """A null for the reader (a reader of the whole face; test_validate.py proves the
    pieces), then validate on small settings, so the validation figure has its inputs."""
    import torch
    from conftest import BROWS_SIZE

    from saliency.models.checkpoint import read_checkpoint, save_checkpoint
    from saliency.models.preprocess import Preprocessing
    from saliency.models.reader_run import reader_checkpoint
    from saliency.stages.null import NullConfig, analyse_null

    manifest = read_checkpoint(run / "checkpoints" / "best.pt")["data"]["manifest"]
    uniform = torch.ones(BROWS_SIZE, BROWS_SIZE)
    ckpt = reader_checkpoint(manifest, uniform, Preprocessing(size=BROWS_SIZE), 400.0)
    save_checkpoint(run / "null" / "checkpoints" / "best.pt", ckpt)
    analyse_null(NullConfig(run, workers=0, device="cpu"))
    small = ["--randomization-images", "4", "--curve-images", "8", "--curve-steps", "4"]
    assert (
        main(["validate", "--run", str(run), "--workers", "0", *small, "--bootstrap", "100"]) == 0
    )


def _figure(study, name, width="double"):
    """Rebuild one figure as the stage does (same inputs, same style) to inspect it."""
    import matplotlib.pyplot as plt

    from saliency.stages import figures
    from saliency.viz.style import PAPER_RC

    cfg = figures.FiguresConfig(study, min_n=3, width=width)
    methods, cells, classes = figures._context(study, "test")
    with plt.rc_context(PAPER_RC):
        build = dict(figures.builders(cfg, methods, cells, classes))[name]
        spec = build()
        spec.figure.canvas.draw()
    return spec.figure


def test_every_figure_is_written_as_pdf_and_png_and_none_is_blank(study):
    listing = json.loads((study / "figures" / "figures.json").read_text())
    assert [f["name"] for f in listing["figures"]] == [*FIGURES, "group_accuracy"]
    assert listing["skipped"] == []
    for name in FIGURES:
        pdf, png = study / "figures" / f"{name}.pdf", study / "figures" / f"{name}.png"
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000, name
        pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
        assert pixels.shape[1] >= 3.4 * 120 and pixels.std() > 10, name  # not blank
        width = next(f["width_in"] for f in listing["figures"] if f["name"] == name)
        assert abs(pixels.shape[1] - width * 120) <= 1, name  # the page width, exactly
        assert (pixels < 128).mean() > 0.005, name  # some ink: text, lines, maps
    for f in listing["figures"]:
        assert f["n"] == 48 and f["caption"].endswith("."), f


def test_the_group_table_in_three_formats(study):
    csv = pd.read_csv(study / "figures" / "group_accuracy.csv", keep_default_na=False)
    assert list(csv["selection"][:3]) == ["all", "female", "male"] and csv["n"].iloc[0] == 48
    md = (study / "figures" / "group_accuracy.md").read_text().splitlines()
    assert md[0].startswith("| selection |") and len(md) == 2 + len(csv)
    tex = (study / "figures" / "group_accuracy.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"B\_F" in tex
    assert tex.count(r"\\") == len(csv) + 1  # header and one line per row
    evaluated = pd.read_csv(study / "eval" / "test" / "group_accuracy.csv")
    b_f = evaluated.set_index("selection").loc["B_F"]
    row = csv.set_index("selection").loc["B_F"]
    assert f"{row['accuracy (%)']:.1f}" == f"{100 * b_f['accuracy']:.1f}"  # 8 of 12: 66.7


def _map_layers(fig):
    """(axes, the map drawn over the face) for every panel that shows a map."""
    return [(ax, ax.images[-1]) for ax in fig.axes if len(ax.images) >= 2]


def test_a_methods_panels_share_one_color_scale(study):
    fig = _figure(study, "average_grid")
    panels = _map_layers(fig)
    assert len(panels) >= 9
    by_title = {}
    for ax, im in panels:  # columns are "<method>, <outcome>"; rows below have no title
        by_title.setdefault(round(ax.get_position().x0, 3), []).append(im.get_clim())
    columns = sorted(by_title.items())
    for (_, a), (_, b) in zip(columns[0::2], columns[1::2], strict=False):
        assert len({*a, *b}) == 1  # correct and incorrect columns of one method: one scale
    scales = {clim for _, clims in columns for clim in clims}
    assert 1 < len(scales) <= 3  # one per method


@pytest.mark.parametrize(
    "name", ["difference_incorrect_minus_correct", "difference_cell_minus_all"]
)
def test_difference_maps_are_centred_at_zero(study, name):
    fig = _figure(study, name)
    panels = _map_layers(fig)
    assert panels
    for _, im in panels:
        lo, hi = im.get_clim()
        assert lo == -hi and hi > 0
        assert im.get_cmap().name == "RdBu_r"


def _drawn_texts(fig) -> list:
    """Every text the renderer draws: titles, labels, legends, annotations, and the tick
    labels whose ticks lie inside their axis's view (the others exist but are not drawn)."""
    ticks = set()
    drawn = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            span = (hi - lo) or 1.0
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                for label in (tick.label1, tick.label2):
                    ticks.add(id(label))
                    inside = lo - 1e-9 * span <= tick.get_loc() <= hi + 1e-9 * span
                    if inside and label.get_visible() and tick.get_visible():
                        drawn.append(label)
    others = [t for t in fig.findobj(match=Text) if id(t) not in ticks]
    texts = [t for t in drawn + others if t.get_visible() and t.get_text().strip()]
    return [t for t in texts if t.get_window_extent(fig.canvas.get_renderer()).width > 0]


@pytest.mark.parametrize("name", FIGURES)
def test_no_two_labels_overlap(study, name):
    fig = _figure(study, name)
    renderer = fig.canvas.get_renderer()
    texts = _drawn_texts(fig)
    boxes = [t.get_window_extent(renderer).expanded(0.98, 0.9) for t in texts]
    clashes = [(texts[i].get_text(), texts[j].get_text())
               for i, j in itertools.combinations(range(len(texts)), 2)
               if boxes[i].overlaps(boxes[j])]  # fmt: skip
    assert not clashes, clashes[:5]
    assert len(texts) >= 10
    width, height = fig.get_size_inches()
    assert width <= 7.0 + 1e-9  # a two-column page
    assert fig.get_tightbbox(renderer).x1 <= width + 0.02  # nothing sticks out of it


def test_a_one_column_figure_fits_one_column_and_grids_keep_two(study):
    fig = _figure(study, "ablation_effects", "single")
    assert fig.get_size_inches()[0] == pytest.approx(3.5)
    texts = _drawn_texts(fig)
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer).expanded(0.98, 0.9) for t in texts]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    tight = fig.get_tightbbox(renderer)
    assert tight.width <= 3.5 + 0.02  # inches: nothing sticks out of the column
    assert _figure(study, "average_grid", "single").get_size_inches()[0] == pytest.approx(7.0)


def test_the_report_is_one_self_contained_file(study):
    assert main(["report", "--run", str(study)]) == 0
    page = (study / "report.html").read_text()
    images = re.findall(r'<img[^>]*src="([^"]*)"', page)
    assert len(images) == len(FIGURES)
    assert all(src.startswith("data:image/png;base64,") for src in images)
    outside = re.sub(r'src="data:[^"]*"', "", page)
    assert "http" not in outside and "src=" not in outside and "<script" not in outside
    assert "<link" not in outside and "url(" not in outside
    for f in json.loads((study / "figures" / "figures.json").read_text())["figures"]:
        assert html.escape(f["caption"], quote=True) in page  # every caption, escaped
    assert page.count("<table>") >= 3  # group table, ranking, agreement, skipped or provenance
    assert "B_F" in page and "brows" in page


def test_the_overlap_check_sees_a_clash_and_ignores_undrawn_ticks():
    import matplotlib.pyplot as plt

    from saliency.viz.style import PAPER_RC

    with plt.rc_context(PAPER_RC):
        fig = plt.figure(figsize=(3.5, 2.0))
        ax = fig.add_subplot()
        ax.set_xticks([-0.5, 0.0, 0.5, 1.0])
        ax.set_xlim(0, 1)  # now -0.5 lies outside the view: not drawn
        ax.text(0.5, 0.5, "first label", transform=ax.transAxes)
        ax.text(0.52, 0.5, "second label", transform=ax.transAxes)
        fig.canvas.draw()
    texts = [t.get_text() for t in _drawn_texts(fig)]
    assert "first label" in texts and "second label" in texts and "−0.5" not in texts
    renderer = fig.canvas.get_renderer()
    boxes = {t.get_text(): t.get_window_extent(renderer) for t in _drawn_texts(fig)}
    assert boxes["first label"].overlaps(boxes["second label"])
    plt.close(fig)
