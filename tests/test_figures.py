"""`saliency figures` and `saliency report` on the hand-weighted brows run: every figure is
written and not blank, panels that share a scale share it, difference maps are centred at
zero, no two labels overlap, and the report is one self-contained file.

Every figure also draws its data: one panel of each (found by its title and labels, never by
its place in ``fig.axes``) is compared with what it must show. Where the reader makes the
answer known (its maps are ``w * t * (d - 0.5)`` for the predicted class, it errs on exactly
the 4 flipped women of B_F, only deleting the brows moves its score, all its positive
attribution lies in the brows), the expected values come from the images and that formula;
elsewhere (bootstrap intervals, IG's maps, the validation tables) from the file the figure
reads, so a swapped panel, column, series or curve fails."""

import base64
import html
import itertools
import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from PIL import Image

from saliency.cli import main

FIGURES = (
    "region_cell_matrix", "average_grid", "difference_incorrect_minus_correct",
    "difference_cell_minus_all", "ablation_effects", "share_enrichment", "score_distributions",
    "evaluation", "threshold_errors", "validation", "validation_cells", "attributes",
)  # fmt: skip


@pytest.fixture(scope="module")
def study(brows_reader_run, tmp_path_factory):
    """Every stage before the figures, on a private copy of the reader run."""
    run = tmp_path_factory.mktemp("figures") / "run"
    shutil.copytree(brows_reader_run, run, ignore=shutil.ignore_patterns(
        "saliency", "ablation", "share", "averages", "agreement", "figures", "eval"))  # fmt: skip
    r, quiet = str(run), ["--workers", "0"]
    # the averages' preview PNGs are no figure's input (the figures read the .npz files)
    avg = ["--no-preview", *quiet]
    assert main(["evaluate", "--run", r, *quiet]) == 0
    assert main(["explain", "--run", r, "--methods", "cam,gradcam,ig", "--ig-steps", "8",
                 "--ig-baseline", "blur", *quiet]) == 0  # fmt: skip
    for split in ("correct", "incorrect"):
        assert main(["average", "--run", r, "--split", split, *avg]) == 0
    # the reader errs only on the 4 flipped women of B_F: all and B_F both hold incorrect
    # and correct predictions, so every selection asked for is written and the exit is 0
    assert main(["average", "--run", r, "--split", "incorrect", "--contrast", "correct",
                 "--group", "all", "--group", "B_F", "--permutations", "50",
                 *avg]) == 0  # fmt: skip
    cells = [a for c in ("A_F", "A_M", "B_F", "B_M") for a in ("--group", c)]
    assert main(["average", "--run", r, *cells, "--split", "all", "--contrast", "rest",
                 "--permutations", "50", *avg]) == 0  # fmt: skip
    assert main(["average", "--run", r, "--group", "all", "--split", "all", *avg]) == 0
    assert main(["share", "--run", r, "--bootstrap", "100", *quiet]) == 0
    assert main(["ablate", "--run", r, *quiet]) == 0
    assert main(["agreement", "--run", r, "--bootstrap", "100"]) == 0
    _null_and_validate(run)
    assert main(["attributes", "--run", r, "--bootstrap", "100", *quiet]) == 0
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

    manifest = read_checkpoint(run / "checkpoints" / "best.pt").data.manifest
    uniform = torch.ones(BROWS_SIZE, BROWS_SIZE)
    ckpt = reader_checkpoint(manifest, uniform, Preprocessing(size=BROWS_SIZE), 400.0)
    save_checkpoint(run / "null" / "checkpoints" / "best.pt", ckpt)
    analyse_null(NullConfig(run, workers=0, device="cpu"))
    small = ["--randomization-images", "4", "--curve-images", "8", "--curve-steps", "4",
             "--no-floor"]  # the floor is tested in test_validate.py  # fmt: skip
    assert (
        main(["validate", "--run", str(run), "--workers", "0", *small, "--bootstrap", "100"]) == 0
    )


@pytest.fixture(scope="module")
def figure(study):
    """``figure(name, width)``: one figure rebuilt as the stage builds it, once per module (the
    tests only read it), and closed when the module is done."""
    import matplotlib.pyplot as plt

    built = {}

    def get(name, width="double"):
        if (name, width) not in built:
            built[(name, width)] = _figure(study, name, width)
        return built[(name, width)]

    yield get
    for fig in built.values():
        plt.close(fig)


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
        # every figure rests on the 48 test images, but the per-cell validation on the
        # validation subset (the 8 curve images, taken from the cells in turn)
        assert f["n"] == (8 if f["name"] == "validation_cells" else 48), f
        assert f["caption"].endswith("."), f


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


def test_a_methods_panels_share_one_color_scale(figure):
    fig = figure("average_grid")
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
def test_difference_maps_are_centred_at_zero(figure, name):
    fig = figure(name)
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
def test_no_two_labels_overlap(figure, name):
    fig = figure(name)
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


def test_a_one_column_figure_fits_one_column_and_grids_keep_two(figure):
    fig = figure("ablation_effects", "single")
    assert fig.get_size_inches()[0] == pytest.approx(3.5)
    texts = _drawn_texts(fig)
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer).expanded(0.98, 0.9) for t in texts]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    tight = fig.get_tightbbox(renderer)
    assert tight.width <= 3.5 + 0.02  # inches: nothing sticks out of the column
    assert figure("average_grid", "single").get_size_inches()[0] == pytest.approx(7.0)


class _Page(HTMLParser):
    """Each <figure> of a page as (img attributes, figcaption text), every <img>, and each
    <table> as rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.figures, self.images, self.tables, self._in = [], [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
            if self.figures and self._in == "figure":
                self.figures[-1][0].update(attrs)
        elif tag == "figure":
            self.figures.append(({}, ""))
            self._in = "figure"
        elif tag == "figcaption":
            self._in = "figcaption"
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._in = "cell"
            self.tables[-1][-1].append("")

    def handle_endtag(self, tag):
        if tag in ("figcaption", "td", "th"):
            self._in = "figure" if tag == "figcaption" else None
        elif tag == "figure":
            self._in = None

    def handle_data(self, data):
        if self._in == "figcaption":
            attrs, text = self.figures[-1]
            self.figures[-1] = (attrs, text + data)
        elif self._in == "cell":
            self.tables[-1][-1][-1] += data


def test_the_report_is_one_self_contained_file(study):
    """Self-contained (inline images and style, no scripts, no links out), and structured, not
    only holding substrings: one <img> per figure of figures.json, each inside its own
    <figure>, in the listing's order; the inline bytes are that figure's PNG; the caption
    beside it is that figure's caption and n; the first table is the group table, one row
    per group with B_F's 8 of 12 as 66.7."""
    assert main(["report", "--run", str(study)]) == 0
    text = (study / "report.html").read_text()
    images = re.findall(r'<img[^>]*src="([^"]*)"', text)
    assert len(images) == len(FIGURES)
    assert all(src.startswith("data:image/png;base64,") for src in images)
    outside = re.sub(r'src="data:[^"]*"', "", text)
    assert "http" not in outside and "src=" not in outside and "<script" not in outside
    assert "<link" not in outside and "url(" not in outside
    for f in json.loads((study / "figures" / "figures.json").read_text())["figures"]:
        assert html.escape(f["caption"], quote=True) in text  # every caption, escaped
    assert text.count("<table>") >= 3  # group table, ranking, agreement, skipped or provenance
    page = _Page()
    page.feed(text)
    listing = json.loads((study / "figures" / "figures.json").read_text())["figures"]
    drawn = [f for f in listing if f["name"] != "group_accuracy"]
    assert [f["name"] for f in drawn] == list(FIGURES)
    assert len(page.images) == len(page.figures) == len(drawn)
    for k, (f, (img, caption)) in enumerate(zip(drawn, page.figures, strict=True), start=1):
        assert img["alt"] == f["name"]
        data = base64.b64decode(img["src"].removeprefix("data:image/png;base64,"))
        assert data == (study / "figures" / f"{f['name']}.png").read_bytes(), f["name"]
        assert caption == f"Figure {k}. {f['caption']} Rests on {f['n']} images."
    csv = pd.read_csv(study / "figures" / "group_accuracy.csv", keep_default_na=False)
    header, *rows = page.tables[0]
    assert header == list(csv.columns) and len(rows) == len(csv)
    b_f = next(r for r in rows if r[0] == "B_F")
    assert b_f[list(csv.columns).index("accuracy (%)")] == "66.7"


# ---- every figure draws its data --------------------------------------------------------

W = 400.0  # the reader's weight (conftest's brows_reader_run)
METHODS = ("cam", "gradcam", "ig")
CELLS = ("A_F", "A_M", "B_F", "B_M")
OUTCOMES = ("correct", "incorrect")


@pytest.fixture(scope="module")
def world(study, brows_world):
    """The test images in the maps' row order, and what the reader must make of them, from
    the manifest, the pixels and the formula only: cell, flipped (the reader's only errors),
    the male logit ``w * mean(t * (d - 0.5))``, the faces in [0, 1] and the CAM for the
    predicted class ``w * t * (d - 0.5)`` (negated for female), max-normalized per image
    (Grad-CAM is CAM / HW, so its normalized maps are the same)."""
    from conftest import brows_world_labels

    from saliency.data.regions import REGION_CODES

    paths = pd.read_csv(study / "saliency" / "test" / "cam" / "index.csv")["path"]
    manifest = pd.read_csv(brows_world / "manifest.csv", keep_default_na=False).set_index("path")
    rows = manifest.loc[list(paths)]
    flipped = rows["flipped"].astype(str).str.lower().eq("true").to_numpy()
    male = rows["label"].eq("male").to_numpy()
    brows = brows_world_labels() == REGION_CODES["brows"]
    faces = np.stack(
        [np.asarray(Image.open(brows_world / p).convert("RGB"), float) / 255 for p in paths]
    )
    dark = 1 - faces.mean(-1)
    logit = W * ((dark - 0.5) * brows).mean(axis=(1, 2))
    predicted_male = male | flipped  # the flipped women of B_F have male brows
    assert flipped.sum() == 4 and ((logit > 0) == predicted_male).all()
    cam = W * (dark - 0.5) * brows * np.where(predicted_male, 1.0, -1.0)[:, None, None]
    return {
        "path": list(paths),
        "cell": (rows["group"] + "_" + rows["label"].str[0].str.upper()).to_numpy(),
        "group": rows["group"].to_numpy(),
        "label": rows["label"].to_numpy(),
        "flipped": flipped,
        "male": male,
        "logit": logit,
        "brows": brows,
        "faces": faces,
        "norm": cam / np.abs(cam).max(axis=(1, 2), keepdims=True),
    }


def _where(world, name: str) -> np.ndarray:
    """Rows of a selection: all, a class, a subgroup or a cell."""
    if name == "all":
        return np.ones(len(world["cell"]), bool)
    for key in ("label", "group", "cell"):
        if name in set(world[key]):
            return world[key] == name
    raise AssertionError(name)


def _grid(axes) -> dict:
    """Panels of a grid keyed by (column, row): the column is the title of the top panel
    above it (up to " (n = "), the row the y label of the left panel beside it (its first
    line). Positions, not the order of ``fig.axes``, tie a panel to its names."""
    axes = list(axes)
    top = max(ax.get_position().y0 for ax in axes)
    left = min(ax.get_position().x0 for ax in axes)
    cols = [(ax.get_position().x0, ax.get_title().split(" (n = ")[0])
            for ax in axes if abs(ax.get_position().y0 - top) < 1e-3]  # fmt: skip
    rows = [(ax.get_position().y0, ax.get_ylabel().split("\n")[0])
            for ax in axes if abs(ax.get_position().x0 - left) < 1e-3]  # fmt: skip

    def name(v, named):
        d, found = min((abs(v - x), n) for x, n in named)
        assert d < 1e-3 and found, (v, named)
        return found

    grid = {(name(ax.get_position().x0, cols), name(ax.get_position().y0, rows)): ax
            for ax in axes}  # fmt: skip
    assert len(grid) == len(axes)  # no two panels share a name
    return grid


def _texts(ax) -> set:
    return {t.get_text() for t in ax.texts}


def _bars(ax) -> dict:
    """``{(category, series): (height, low, high, n)}`` of an interval-bars panel: the
    category is the tick label under the bar, the series and n its legend label, low and
    high the ends of the error bar at the bar's centre."""
    from matplotlib.container import BarContainer

    ticks, names = ax.get_xticks(), ax.xaxis.get_major_formatter()
    labels = [names(t, i) for i, t in enumerate(ticks)]  # also where sharex hides them
    out = {}
    for cont in ax.containers:
        if not isinstance(cont, BarContainer):
            continue
        series, _, n = cont.get_label().partition(" (n = ")
        ends = {round(float(seg[0][0]), 9): (seg[0][1], seg[1][1])
                for seg in cont.errorbar.lines[2][0].get_segments()}  # fmt: skip
        for patch in cont.patches:
            x = patch.get_x() + patch.get_width() / 2
            k = int(np.argmin(np.abs(ticks - x)))
            assert abs(ticks[k] - x) < 0.5
            lo, hi = sorted(ends[round(x, 9)])
            out[(labels[k], series)] = (patch.get_height(), lo, hi, n.rstrip(")"))
    return out


def test_each_average_grid_panel_draws_its_selections_mean(figure, study, world):
    """Panel (method, outcome; row) shows averages/<method>_<outcome>_<row>.npz's mean over
    that npz's mean face, says its n, and greys the selections with no image. The n's and,
    for cam and gradcam, the maps themselves are the reader's: the incorrect column holds
    only B_F's 4 flipped women, and its map is the mean of their normalized formula maps."""
    fig = figure("average_grid")
    grid = _grid(ax for ax in fig.axes if ax.images)  # colorbars hold no image
    rows = ("all", *CELLS)
    assert set(grid) == {(f"{m}, {o}", r) for m in METHODS for o in OUTCOMES for r in rows}
    shown = 0
    for (column, row), ax in grid.items():
        method, outcome = column.split(", ")
        rows_ = _where(world, row) & (world["flipped"] == (outcome == "incorrect"))
        npz = study / "averages" / f"{method}_{outcome}_{row}.npz"
        if not rows_.any():  # A_F, A_M and B_M never err
            assert len(ax.images) == 1 and "no images" in _texts(ax), (column, row)
            assert not npz.exists()
            continue
        shown += 1
        face, heat = ax.images
        saved = np.load(npz)
        np.testing.assert_array_equal(heat.get_array(), saved["mean"])
        np.testing.assert_allclose(face.get_array(), world["faces"][rows_].mean(0), atol=1e-6)
        if method != "ig":
            np.testing.assert_allclose(heat.get_array(), world["norm"][rows_].mean(0), atol=1e-5)
        assert f"n = {rows_.sum()}" in _texts(ax), (column, row)  # 44, 4, 12 or 8 and 4
    assert shown == len(METHODS) * (len(rows) + 2)  # correct: 5 rows; incorrect: all, B_F


def test_incorrect_minus_correct_panels_draw_the_difference_of_means(figure, study, world):
    """Panel (cell; method) is <method>_incorrect_<cell>_vs_correct.npz's difference, with the
    outline iff a pixel has p_fwe < 0.05; for cam and gradcam it equals the mean normalized
    formula map of the flipped women minus that of the correct faces (4 vs 44 for all, 4 vs
    8 for B_F); the cells where the reader never errs have no test and are greyed."""
    fig = figure("difference_incorrect_minus_correct")
    grid = _grid(ax for ax in fig.axes if ax.images)
    assert set(grid) == {(c, m) for c in ("all", *CELLS) for m in METHODS}
    for (cell, method), ax in grid.items():
        sel = _where(world, cell)
        bad, good = sel & world["flipped"], sel & ~world["flipped"]
        if cell not in ("all", "B_F"):
            assert len(ax.images) == 1 and "no test" in _texts(ax), (cell, method)
            continue
        saved = np.load(study / "averages" / f"{method}_incorrect_{cell}_vs_correct.npz")
        drawn = ax.images[-1].get_array()
        np.testing.assert_array_equal(drawn, saved["difference"])
        if method != "ig":
            expected = world["norm"][bad].mean(0) - world["norm"][good].mean(0)
            np.testing.assert_allclose(drawn, expected, atol=1e-5)
        assert f"n = {bad.sum()} vs {good.sum()}" in _texts(ax)
        assert bool(ax.collections) == bool((saved["p_fwe"] < 0.05).any()), (cell, method)


def test_cell_minus_all_panels_draw_the_cells_mean_minus_everyones(figure, study, world):
    """Panel (cell; method) is the cell's mean map minus the mean over all 48 images: for cam
    and gradcam the normalized formula maps' means, for ig the two npz means average wrote;
    n = 12 vs 36 (the cell against the rest); outlined iff the cell-vs-rest test has a pixel
    with p_fwe < 0.05."""
    fig = figure("difference_cell_minus_all")
    grid = _grid(ax for ax in fig.axes if ax.images)
    assert set(grid) == {(c, m) for c in CELLS for m in METHODS}
    for (cell, method), ax in grid.items():
        sel = _where(world, cell)
        drawn = ax.images[-1].get_array()
        test = np.load(study / "averages" / f"{method}_all_{cell}_vs_rest.npz")
        everyone = np.load(study / "averages" / f"{method}_all_all.npz")
        np.testing.assert_allclose(drawn, test["mean"] - everyone["mean"], atol=1e-7)
        if method != "ig":
            expected = world["norm"][sel].mean(0) - world["norm"].mean(0)
            np.testing.assert_allclose(drawn, expected, atol=1e-5)
        assert f"n = {sel.sum()} vs {(~sel).sum()}" in _texts(ax)
        assert bool(ax.collections) == bool((test["p_fwe"] < 0.05).any()), (cell, method)


def _per_image(study, region: str, world) -> pd.DataFrame:
    """A region's per-image ablation table with each image's cell from the manifest."""
    per = pd.read_csv(study / "ablation" / f"{region}_blur_delete" / "per_image.csv")
    cell = dict(zip(world["path"], world["cell"], strict=True))
    return per.assign(cell=[cell[p] for p in per["path"]])


def test_ablation_bars_are_the_per_image_changes_and_the_summary_intervals(figure, study, world):
    """Bar (region, selection) of the top panel is 100 x the mean of correct_after -
    correct_before over that selection's images, the bottom one the same of the probability;
    both are exactly 0 for every region but the brows (the reader reads nothing else), and
    the error bars are summary.csv's intervals; n in the legend is 48 or 12."""
    from saliency.data.regions import REGIONS

    fig = figure("ablation_effects")
    axes = {ax.get_ylabel(): ax for ax in fig.axes if ax.containers}
    panels = {"accuracy change (points)": ("correct", "accuracy_change"),
              "true-class probability\nchange (points)": ("prob", "prob_change")}  # fmt: skip
    assert set(axes) == set(panels)
    for ylabel, (column, value) in panels.items():
        bars = _bars(axes[ylabel])
        assert set(bars) == {(r, s) for r in REGIONS for s in ("all", *CELLS)}
        for region in REGIONS:
            per = _per_image(study, region, world)
            summary = pd.read_csv(
                study / "ablation" / f"{region}_blur_delete" / "summary.csv"
            ).set_index("selection")
            for sel in ("all", *CELLS):
                rows = per if sel == "all" else per[per["cell"] == sel]
                change = (rows[f"{column}_after"].astype(float)
                          - rows[f"{column}_before"].astype(float)).mean()  # fmt: skip
                height, lo, hi, n = bars[(region, sel)]
                assert height == pytest.approx(100 * change, rel=1e-4, abs=1e-9), (region, sel)
                if region != "brows":
                    assert height == 0 and lo == 0 and hi == 0, (region, sel)
                assert lo == pytest.approx(100 * summary.loc[sel, f"{value}_low"], abs=1e-9)
                assert hi == pytest.approx(100 * summary.loc[sel, f"{value}_high"], abs=1e-9)
                assert int(n) == len(rows) == (48 if sel == "all" else 12)
    # the blur mixes the brows with the skin around them (d = 0.31), between women's brows
    # (0.12) and men's (0.88): every face of a cell without flipped women loses probability of
    # its true class (B_F's flipped women, dark-browed, gain it)
    drawn = _bars(axes["true-class probability\nchange (points)"])
    assert all(drawn[("brows", s)][0] < 0 for s in ("A_F", "A_M", "B_M"))


def test_share_bars_give_the_brows_all_positive_attribution(figure, study, world):
    """Per method: the share bars are 100 % in the brows and 0 elsewhere for every selection
    (every map is 0 outside the brows), the enrichment bars 1 / (brows' share of the pixels)
    and 0; heights and error bars equal share/<method>_test/summary.csv (split all)."""
    from saliency.data.regions import REGIONS

    fig = figure("share_enrichment")
    axes = {ax.get_ylabel(): ax for ax in fig.axes if ax.containers}
    area = world["brows"].mean()  # 88 of 4096 pixels
    for method in METHODS:
        summary = pd.read_csv(study / "share" / f"{method}_test" / "summary.csv",
                              keep_default_na=False)  # fmt: skip
        summary = summary[summary["split"] == "all"].set_index(["region", "selection"])
        for ylabel, value, scale, brows in (
            (f"{method}: share of positive\nattribution (%)", "share", 100, 100.0),
            (f"{method}: enrichment\n(share / area)", "enrichment", 1, 1 / area),
        ):
            bars = _bars(axes[ylabel])
            assert set(bars) == {(r, s) for r in REGIONS for s in ("all", *CELLS)}
            for (region, sel), (height, lo, hi, n) in bars.items():
                expected = brows if region == "brows" else 0.0
                assert height == pytest.approx(expected, rel=1e-4, abs=1e-7), (method, region)
                row = summary.loc[(region, sel)]
                assert height == pytest.approx(scale * row[value], rel=1e-12, abs=1e-12)
                assert lo == pytest.approx(scale * row[f"{value}_low"], rel=1e-12, abs=1e-12)
                assert hi == pytest.approx(scale * row[f"{value}_high"], rel=1e-12, abs=1e-12)
                assert int(n) == (48 if sel == "all" else 12)


def _step_heights(patch, edges: np.ndarray) -> list[float]:
    """The bar heights of a filled step histogram: over each bin's centre, the highest
    horizontal edge of its outline (the other is its base, at 0)."""
    xy = patch.get_xy()
    flat = [(min(a[0], b[0]), max(a[0], b[0]), a[1]) for a, b in zip(xy, xy[1:], strict=False)
            if a[1] == b[1]]  # fmt: skip
    mids = (edges[:-1] + edges[1:]) / 2
    return [max(y for lo, hi, y in flat if lo <= m <= hi) for m in mids]


def test_score_histograms_count_each_cells_scores_before_and_after(figure, study, world):
    """Panel (cell; region) holds two histograms over one region's shared bins (24 between
    the smallest and largest score before or after): the counts of that cell's per-image
    scores. The scores before are the reader's true-class logits by the formula, and only
    the brows change them, so elsewhere the two histograms are the same."""
    from saliency.data.regions import REGIONS

    fig = figure("score_distributions")
    grid = _grid(ax for ax in fig.axes if ax.patches)
    assert set(grid) == {(c, r) for c in ("all", *CELLS) for r in REGIONS}
    true_score = dict(zip(world["path"], np.where(world["male"], 1, -1) * world["logit"],
                          strict=True))  # fmt: skip
    for region in REGIONS:
        per = _per_image(study, region, world)
        before, after = per["score_before"].to_numpy(float), per["score_after"].to_numpy(float)
        np.testing.assert_allclose(before, [true_score[p] for p in per["path"]], atol=1e-4)
        if region != "brows":
            np.testing.assert_array_equal(after, before)
        both = np.concatenate([before, after])
        edges = np.linspace(both.min(), both.max(), 25)
        for cell in ("all", *CELLS):
            ax = grid[(cell, region)]
            sel = np.ones(len(per), bool) if cell == "all" else (per["cell"] == cell).to_numpy()
            drawn = {h.get_label(): _step_heights(h, edges) for h in ax.patches}
            assert set(drawn) == {"before", "after"}
            np.testing.assert_array_equal(drawn["before"], np.histogram(before[sel], edges)[0])
            np.testing.assert_array_equal(drawn["after"], np.histogram(after[sel], edges)[0])
            assert sum(drawn["before"]) == sel.sum() == (48 if cell == "all" else 12)
    top = {ax.get_title() for ax in grid.values() if ax.get_title().endswith(")")}
    assert top == {"all (n = 48)", *(f"{c} (n = 12)" for c in CELLS)}


def _roc(score: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hand ROC: (0, 0), then one point per distinct threshold, highest first."""
    cuts = np.unique(score)[::-1]
    tpr = [((score >= t) & positive).sum() / positive.sum() for t in cuts]
    fpr = [((score >= t) & ~positive).sum() / (~positive).sum() for t in cuts]
    return np.r_[0.0, fpr], np.r_[0.0, tpr]


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney: the chance a positive outscores a negative, ties counting half."""
    p, n = score[positive][:, None], score[~positive][None, :]
    return float(((p > n) + 0.5 * (p == n)).mean())


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    centre = (k / n + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(k / n * (1 - k / n) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_evaluation_panels_are_the_readers_predictions(figure, study, world):
    """Confusion: 20 of 24 women right (the 4 flipped called male), 24 of 24 men. ROC: each
    curve is the hand ROC of predictions.csv's male probability (itself the sigmoid of the
    formula's logit), its AUC by Mann-Whitney. Reliability: mean confidence and accuracy per
    non-empty bin of 15. Accuracy bars: correct / n of every selection (8 of 12 in B_F, all
    of A), with hand Wilson intervals."""
    fig = figure("evaluation")
    by_title = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    confusion = by_title["confusion matrix\n(row-normalized)"]
    np.testing.assert_allclose(confusion.images[0].get_array(), [[20 / 24, 4 / 24], [0, 1]])
    assert {"20\n83.3%", "4\n16.7%", "0\n0.0%", "24\n100.0%"} <= _texts(confusion)

    pred = pd.read_csv(study / "eval" / "test" / "predictions.csv", keep_default_na=False)
    order = [world["path"].index(p) for p in pred["path"]]
    prob = pred["prob_male"].to_numpy(float)
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-world["logit"][order])), atol=1e-5)
    positive = world["male"][order]
    roc = by_title["ROC per subgroup"]
    curves = {line.get_label().split(" (AUC")[0]: line for line in roc.lines
              if "(AUC" in line.get_label()}  # fmt: skip
    assert set(curves) == {"all", "A", "B"}
    for name, line in curves.items():
        sel = np.ones(len(pred), bool) if name == "all" else world["group"][order] == name
        fpr, tpr = _roc(prob[sel], positive[sel])
        np.testing.assert_allclose(line.get_xdata(), fpr, atol=1e-12)
        np.testing.assert_allclose(line.get_ydata(), tpr, atol=1e-12)
        assert line.get_label() == f"{name} (AUC {_auc(prob[sel], positive[sel]):.3f})"
    assert curves["A"].get_label() == "A (AUC 1.000)"  # group A has no flipped face

    reliability = next(ax for t, ax in by_title.items() if t.startswith("reliability"))
    confidence = np.maximum(prob, 1 - prob)
    right = ~world["flipped"][order]
    which = np.minimum((confidence * 15).astype(int), 14)
    bins = np.unique(which)
    (line,) = [ln for ln in reliability.lines if ln.get_marker() == "o"]
    np.testing.assert_allclose(line.get_xdata(), [confidence[which == b].mean() for b in bins])
    np.testing.assert_allclose(line.get_ydata(), [right[which == b].mean() for b in bins])
    ece = sum((which == b).mean() * abs(right[which == b].mean() - confidence[which == b].mean())
              for b in bins)  # fmt: skip
    assert reliability.get_title() == f"reliability (ECE {ece:.3f})"

    bars = _bars(by_title["accuracy, 95% Wilson intervals\n(dotted: chance)"])
    names = {"all", "female", "male", "A", "B", *CELLS}
    assert {c for c, _ in bars} == names
    for (name, series), (height, lo, hi, _n) in bars.items():
        sel = _where(world, name)
        k = int((sel & ~world["flipped"]).sum())
        assert series == "accuracy"
        assert height == pytest.approx(100 * k / sel.sum(), rel=1e-4)
        low, high = _wilson(k, int(sel.sum()))
        assert lo == pytest.approx(100 * low, abs=1e-3) and hi == pytest.approx(
            100 * high, abs=1e-3
        )
    assert bars[("B_F", "accuracy")][0] == pytest.approx(100 * 8 / 12, rel=1e-4)


def test_validation_panels_are_the_validation_tables(figure, study):
    """Lift bars and their intervals are lift.csv's lambdas over the null, the brows the
    highest for every method (the reader's evidence is there alone, the null reads the whole
    face); each randomization line is randomization_steps.csv's mean Spearman per step; each
    deletion and insertion line is curves.csv's probability per fraction, the insertion line
    told from the deletion line of its method by its color and dashes."""
    from matplotlib.colors import to_rgba

    out = study / "validation"
    fig = figure("validation")
    by_title = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    lift = pd.read_csv(out / "lift.csv", keep_default_na=False)
    lift = lift[lift["reference"] == "null"].set_index(["region", "method"])
    bars = _bars(next(ax for t, ax in by_title.items() if t.startswith("lift")))
    assert set(bars) == set(lift.index) and {m for _, m in bars} == set(METHODS)
    for key, (height, lo, hi, n) in bars.items():
        row = lift.loc[key]
        assert (height, lo, hi) == pytest.approx(
            (row["lambda"], row["lambda_low"], row["lambda_high"]), rel=1e-12, abs=1e-12
        )
        assert int(n) == row["n"]
    for m in METHODS:
        heights = {r: h for (r, mm), (h, *_) in bars.items() if mm == m}
        assert max(heights, key=heights.get) == "brows", heights

    steps = pd.read_csv(out / "randomization_steps.csv", keep_default_na=False)
    rand = by_title["cascading randomization"]
    lines = {ln.get_label(): ln for ln in rand.lines if not ln.get_label().startswith("_")}
    assert set(lines) == set(METHODS)
    for m, line in lines.items():
        s = steps[steps["method"] == m].sort_values("step")
        np.testing.assert_allclose(line.get_xdata(), s["step"])
        np.testing.assert_allclose(line.get_ydata(), s["spearman_abs"], rtol=0, atol=1e-12)

    curves = pd.read_csv(out / "curves.csv", keep_default_na=False)
    ax = by_title["deletion (—), insertion (- -)"]
    assert len(ax.lines) == 2 * (len(METHODS) + 1)
    labelled = {ln.get_label(): ln for ln in ax.lines}
    for m in (*METHODS, "random"):
        deletion = labelled[f"{m} deletion"]
        (insertion,) = [ln for ln in ax.lines if ln.get_linestyle() == "--"
                        and to_rgba(ln.get_color()) == to_rgba(deletion.get_color())]  # fmt: skip
        assert deletion.get_linestyle() == "-"
        for kind, line in (("deletion", deletion), ("insertion", insertion)):
            c = curves[(curves["method"] == m) & (curves["curve"] == kind)].sort_values("fraction")
            assert len(c) >= 2, (m, kind)
            np.testing.assert_allclose(line.get_xdata(), c["fraction"], atol=1e-12)
            np.testing.assert_allclose(line.get_ydata(), c["probability"], atol=1e-12)
    assert labelled["random insertion"].get_linestyle() == "--"


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
