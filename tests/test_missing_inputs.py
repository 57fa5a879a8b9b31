"""Figures and the report when some inputs are missing, on copies of the hand-weighted brows
reader run (tests/conftest.py: the reader errs on exactly the 4 flipped B_F women).

Proves: `saliency figures` skips each figure whose inputs are missing, recording in
figures.json and printing the command that makes them, and running that command does make
them; panels resting on fewer than `--min-n` images are greyed (the face faded to gray, the
count written, no map, kept out of the method's color scale); the report lists the figures
not made with their reasons, and per stage the images it skipped with the reasons. Missing
masks of single images (a missing file, a wrong size, an empty cell) skip those images with
a reason instead of failing the stage, and share finds the masks of a manifest that lists
its images by absolute path.
"""

import json
import os
import shutil
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from saliency.cli import main

DERIVED = ("saliency", "ablation", "share", "averages", "agreement", "figures", "eval", "null",
           "validation", "report.html", "config.json")  # fmt: skip
ORDER = ("region_cell_matrix", "average_grid", "difference_incorrect_minus_correct",
         "difference_cell_minus_all", "ablation_effects", "share_enrichment",
         "score_distributions", "evaluation", "threshold_errors", "validation",
         "validation_cells", "attributes")  # fmt: skip
# figure -> what its skip reason must name: the command that makes its inputs (README,
# "Figures and report"; each is run below to prove it makes them)
NAMED = {
    "region_cell_matrix": ["`saliency ablate --run "],
    "average_grid": ["`saliency average --run RUN` (every outcome)"],
    "difference_incorrect_minus_correct": ["`saliency average --run RUN --contrast-incorrect`"],
    "difference_cell_minus_all": ["`saliency average`"],
    "ablation_effects": ["`saliency ablate --region all`"],
    "share_enrichment": ["`saliency share`"],
    "score_distributions": ["`saliency ablate --region all`"],
    "validation": ["`saliency validate --run "],
    "validation_cells": ["`saliency validate --run "],
    "attributes": ["`saliency attributes --run "],
}
QUIET = ["--workers", "0"]


def _copy(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*DERIVED))
    return dst


@pytest.fixture(scope="module")
def partial(brows_reader_run, tmp_path_factory):
    """A copy of the reader run with only evaluate and explain (cam) done."""
    run = _copy(brows_reader_run, tmp_path_factory.mktemp("partial") / "run")
    assert main(["evaluate", "--run", str(run), *QUIET]) == 0
    assert main(["explain", "--run", str(run), "--methods", "cam", *QUIET]) == 0
    return run


def _private(partial, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(partial, run)
    return run


class _Tables(HTMLParser):
    """Every <table> of a page as lists of cell texts (header row first), each table keyed
    by the last heading (h2/h3) before it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.heading, self._in = {}, None, None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        if tag in ("h2", "h3", "td", "th"):
            self._in, self._text = tag, ""
        elif tag == "table":
            self.tables.setdefault(self.heading, []).append([])
        elif tag == "tr":
            self.tables[self.heading][-1].append([])

    def handle_endtag(self, tag):
        if tag in ("h2", "h3") and self._in == tag:
            self.heading = self._text.strip()
        elif tag in ("td", "th") and self._in == tag:
            self.tables[self.heading][-1][-1].append(self._text)
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in:
            self._text += data


def _report_tables(run) -> dict:
    parser = _Tables()
    parser.feed((run / "report.html").read_text())
    return parser.tables


def _built(run, names, min_n=5):
    """The builders of ``names`` as the stage calls them: name -> FigureSpec or skip reason
    (a builder whose inputs are missing returns its reason without drawing)."""
    import matplotlib.pyplot as plt

    from saliency.stages import figures
    from saliency.viz.style import PAPER_RC

    cfg = figures.FiguresConfig(run, min_n=min_n)
    builders = dict(figures.builders(cfg, *figures._context(run, "test")))
    with plt.rc_context(PAPER_RC):
        out = {name: builders[name]() for name in names}
    for spec in out.values():
        if not isinstance(spec, str):
            plt.close(spec.figure)
    return out


def test_figures_without_inputs_are_skipped_naming_the_command(partial, tmp_path, capsys):
    """Only evaluate and explain have run: the evaluation and threshold figures and the
    group table are made; every other figure is skipped, in figures.json, on the console
    and in the report, with a reason that names the command that makes its inputs; no file
    is written for it."""
    run = _private(partial, tmp_path)
    capsys.readouterr()
    assert main(["figures", "--run", str(run), "--format", "png", "--dpi", "40"]) == 0
    printed = capsys.readouterr().out
    listing = json.loads((run / "figures" / "figures.json").read_text())
    made = ["evaluation", "threshold_errors", "group_accuracy"]
    assert [f["name"] for f in listing["figures"]] == made
    reasons = {s["name"]: s["reason"] for s in listing["skipped"]}
    assert list(reasons) == [n for n in ORDER if n in NAMED]  # the builders' order
    for name, commands in NAMED.items():
        for command in commands:
            assert command in reasons[name], (name, reasons[name])
        assert f"skipped {name}: {reasons[name]}" in printed
        assert not list((run / "figures").glob(f"{name}.*")), name
    assert f"`saliency validate --run {run}`" in reasons["validation"]  # this run, runnable
    assert main(["report", "--run", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert page.count("<img ") == 2  # the evaluation and threshold figures only
    (table,) = _report_tables(run)["Figures not made"]
    assert table[0] == ["name", "reason"]
    assert {name: reason for name, reason in table[1:]} == reasons


# the commands the reasons name, in pipeline order, and the figures each one adds; the
# others must stay skipped until their own command has run
# (averages without their preview PNGs: the figures read the .npz files)
MAKERS = [
    (["average", "--split", "correct", "--no-preview"], {"average_grid"}),
    (["average", "--split", "incorrect", "--contrast", "correct", "--permutations", "20",
      "--no-preview"], {"difference_incorrect_minus_correct"}),
    (["average", "--split", "all", "--no-preview"], {"difference_cell_minus_all"}),
    (["ablate", "--region", "all"],
     {"ablation_effects", "score_distributions", "region_cell_matrix"}),
    (["share", "--bootstrap", "50"], {"share_enrichment"}),
    (["attributes", "--bootstrap", "50"], {"attributes"}),
    (["validate", "--randomization-images", "4", "--curve-images", "8", "--curve-steps", "4",
      "--bootstrap", "50", "--no-floor"], {"validation", "validation_cells"}),
]  # fmt: skip


def test_the_named_commands_make_the_skipped_figures(partial, tmp_path):
    """Run each named command in turn (with small settings): after each, exactly the
    figures whose reason named it are made and the others stay skipped, until none is.
    Without a null model (and without the re-initialized floor) the validation figure is
    still made and its lift panel names the command that makes a null."""
    from matplotlib.text import Text

    run = _private(partial, tmp_path)
    waiting = set(NAMED)
    for argv, adds in MAKERS:
        assert main([argv[0], "--run", str(run), *argv[1:], *QUIET]) == 0, argv
        built = _built(run, waiting)  # drawn once each: what was made stays made
        assert {n for n, s in built.items() if not isinstance(s, str)} == adds, argv
        waiting -= adds
    assert not waiting
    texts = [t.get_text() for t in built["validation"].figure.findobj(Text)]
    assert "no null model:\nrun `saliency null`" in texts


def _mean_face(brows_world, rows) -> np.ndarray:
    """The mean of the selected images in [0, 1] (stored at the model's 64 px: no resize)."""
    from saliency.data.imageio import read_rgb

    faces = [read_rgb(brows_world / p).astype(np.float64) / 255 for p in rows["path"]]
    return np.mean(faces, axis=0)


def test_panels_under_min_n_are_greyed(partial, brows_world, tmp_path):
    """With `--min-n 10`: the reader is right on 44 images (all 12 of A_F, A_M, B_M; 8 of
    B_F) and wrong on the 4 flipped B_F women. So correct/B_F (8), incorrect/all (4) and
    incorrect/B_F (4) are greyed: one gray layer, the face faded (0.75 + 0.25 * gray of the
    mean face computed here from the images), the count against the minimum, no map; the
    empty incorrect cells say "no images"; the other panels carry the map on the method's
    scale, which only they set. The incorrect-minus-correct panels (4 vs 44, 4 vs 8) are
    greyed too."""
    from saliency.stages.figures import maps as figure_maps

    run = _private(partial, tmp_path)
    for split in ("correct", "incorrect"):  # (the figure reads the .npz, not the previews)
        assert main(["average", "--run", str(run), "--split", split, "--no-preview",
                     *QUIET]) == 0  # fmt: skip
    argv = ["average", "--run", str(run), "--split", "incorrect", "--contrast", "correct",
            "--permutations", "20", "--no-preview", *QUIET]  # fmt: skip
    assert main(argv) == 0
    assert main(["figures", "--run", str(run), "--format", "png", "--dpi", "40",
                 "--min-n", "10"]) == 0  # fmt: skip
    listing = json.loads((run / "figures" / "figures.json").read_text())
    grid = next(f for f in listing["figures"] if f["name"] == "average_grid")
    assert "panels under 10 images greyed" in grid["caption"]  # the flag reached the figure

    m = pd.read_csv(brows_world / "manifest.csv", keep_default_na=False)
    m["cell"] = m["group"] + "_" + m["label"].str[0].str.upper()
    wrong = m["flipped"].astype(str) == "True"
    rows, methods = ["all", "A_F", "A_M", "B_F", "B_M"], ["cam"]
    expected = {}  # (outcome, row) -> the images the panel rests on
    for outcome, sel in (("correct", ~wrong), ("incorrect", wrong)):
        for r in rows:
            expected[outcome, r] = m[sel & ((m["cell"] == r) | (r == "all"))]
    fig = figure_maps.average_grid(run, methods, rows[1:], 7.0, 10).figure
    axes = np.array(fig.axes[: len(rows) * 2 * len(methods)]).reshape(len(rows), -1)
    for j, method in enumerate(methods):
        shown = [(o, r) for (o, r), e in expected.items() if len(e) >= 10]
        vmax = max(
            float(np.abs(np.load(run / "averages" / f"{method}_{o}_{r}.npz")["mean"]).max())
            for o, r in shown
        )
        for k, outcome in enumerate(("correct", "incorrect")):
            for i, r in enumerate(rows):
                ax, images = axes[i, 2 * j + k], expected[outcome, r]
                texts = [t.get_text() for t in ax.texts]
                if len(images) >= 10:
                    assert len(ax.images) == 2 and texts == [f"n = {len(images)}"], (outcome, r)
                    assert ax.images[1].get_clim() == (0.0, pytest.approx(vmax)), (outcome, r)
                    drawn = np.load(run / "averages" / f"{method}_{outcome}_{r}.npz")["mean"]
                    np.testing.assert_array_equal(ax.images[1].get_array(), drawn)
                elif len(images) == 0:
                    assert len(ax.images) == 1 and texts == ["no images"], (outcome, r)
                else:
                    assert texts == [f"n = {len(images)} < 10"], (outcome, r)
                    (layer,) = ax.images
                    assert layer.get_cmap().name == "gray" and layer.get_clim() == (0, 1)
                    faded = 0.75 + 0.25 * _mean_face(brows_world, images).mean(axis=-1)
                    np.testing.assert_allclose(layer.get_array(), faded, atol=1e-6)
    fig = figure_maps.incorrect_minus_correct(run, methods, rows[1:], 7.0, 10).figure
    axes = np.array(fig.axes[: len(methods) * len(rows)]).reshape(len(methods), len(rows))
    for i, r in enumerate(rows):  # columns: all and each cell; one row per method
        n_a, n_b = len(expected["incorrect", r]), len(expected["correct", r])
        for ax in axes[:, i]:
            texts = [t.get_text() for t in ax.texts]
            assert len(ax.images) == 1, r  # no difference map drawn in any of them
            assert texts == ([f"n = {n_a} vs {n_b}"] if n_a else ["no test"]), r


def _reader_run(folder, df):
    """The brows reader (conftest) over manifest rows ``df`` written to ``folder``."""
    import torch
    from conftest import BROWS_SIZE, brows_world_labels

    from saliency.data.manifest import write_manifest
    from saliency.data.regions import REGION_CODES
    from saliency.models.checkpoint import save_checkpoint
    from saliency.models.preprocess import Preprocessing
    from saliency.models.reader_run import reader_checkpoint

    manifest = write_manifest(df, folder / "manifest.csv")
    template = torch.from_numpy(brows_world_labels() == REGION_CODES["brows"]).float()
    ckpt = reader_checkpoint(manifest, template, Preprocessing(size=BROWS_SIZE), weight=400.0)
    run = folder / "run"
    save_checkpoint(run / "checkpoints" / "best.pt", ckpt)
    return run


def _rows(brows_world, folder, absolute=False):
    """The brows world's rows for a manifest in ``folder``: image paths relative to it (or
    absolute), masks absolute."""
    from saliency.data.manifest import read_manifest

    m = read_manifest(brows_world / "manifest.csv")
    df = m.df.copy()
    where = [m.abspath(p) for p in df["path"]]
    df["path"] = [str(p) if absolute else os.path.relpath(p, folder) for p in where]
    df["mask"] = [str(m.abspath(p)) for p in df["mask"]]
    return df


def _names(paths) -> list[str]:
    return [str(p).rsplit("/", 1)[-1] for p in paths]


def test_the_report_lists_each_stages_skipped_images_with_reasons(brows_world, tmp_path):
    """Image 000's mask file is missing; image 002's mask is 32 px for a 64 px image. ablate
    can use neither (it fills at the image's own size); share resizes the 32 px mask onto
    the 64 px maps and skips only 000. Each stage's skipped.csv names those images with a
    reason and its tables leave them out; the report's "Skipped images" table has one line
    per stage and reason, with the image count and the skipped images named."""
    from conftest import brows_world_labels

    from saliency.data.imageio import write_rgb

    df = _rows(brows_world, tmp_path)
    write_rgb(tmp_path / "small.png", brows_world_labels()[::2, ::2].copy())
    df.loc[0, "mask"] = str(tmp_path / "missing.png")
    df.loc[2, "mask"] = str(tmp_path / "small.png")
    run = _reader_run(tmp_path, df)
    r = str(run)
    assert main(["explain", "--run", r, "--methods", "cam", *QUIET]) == 0
    assert main(["share", "--run", r, "--bootstrap", "50", *QUIET]) == 0
    assert main(["ablate", "--run", r, "--region", "brows", *QUIET]) == 0

    ablated = pd.read_csv(run / "ablation" / "brows_blur_delete" / "skipped.csv")
    assert _names(ablated["path"]) == ["000.png", "002.png"]
    assert "missing.png" in ablated["reason"][0]
    assert "(32, 32)" in ablated["reason"][1] and "(64, 64)" in ablated["reason"][1]
    per = pd.read_csv(run / "ablation" / "brows_blur_delete" / "per_image.csv")
    assert len(per) == 46 and not {"000.png", "002.png"} & set(_names(per["path"]))
    shared = pd.read_csv(run / "share" / "cam_test" / "skipped.csv")
    assert _names(shared["path"]) == ["000.png"] and "missing.png" in shared["reason"][0]
    assert len(pd.read_csv(run / "share" / "cam_test" / "per_image.csv")) == 47

    assert main(["figures", "--run", r, "--format", "png", "--dpi", "30"]) == 0
    assert main(["report", "--run", r]) == 0
    (table,) = _report_tables(run)["Skipped images"]
    header, lines = table[0], table[1:]
    assert header[:3] == ["stage", "images", "reason"]
    expected = {"ablation/brows_blur_delete": ablated, "share/cam_test": shared}
    assert sorted({line[0] for line in lines}) == sorted(expected)
    assert len(lines) == 3  # one image per reason here
    for stage, skipped in expected.items():
        mine = [line for line in lines if line[0] == stage]
        assert sorted(line[2] for line in mine) == sorted(skipped["reason"])
        assert all(line[1] == "1" for line in mine)
        shown = " ".join(" ".join(line) for line in mine)
        for name in _names(skipped["path"]):
            assert name in shown, (stage, name)  # which images, not only how many


def test_an_image_without_a_mask_is_skipped_with_a_reason(brows_world, tmp_path):
    """A manifest row whose mask cell is empty (no mask for that image): share and ablate
    skip that image with the reason "no region mask" and go on with the other 47."""
    df = _rows(brows_world, tmp_path)
    df.loc[1, "mask"] = ""
    run = _reader_run(tmp_path, df)
    r = str(run)
    assert main(["explain", "--run", r, "--methods", "cam", *QUIET]) == 0
    assert main(["share", "--run", r, "--bootstrap", "50", *QUIET]) == 0
    assert main(["ablate", "--run", r, "--region", "brows", *QUIET]) == 0
    for skipped in (run / "share" / "cam_test" / "skipped.csv",
                    run / "ablation" / "brows_blur_delete" / "skipped.csv"):  # fmt: skip
        t = pd.read_csv(skipped)
        assert _names(t["path"]) == ["001.png"] and t["reason"].tolist() == ["no region mask"]
    assert len(pd.read_csv(run / "share" / "cam_test" / "per_image.csv")) == 47


def test_share_finds_the_masks_of_a_manifest_with_absolute_image_paths(brows_world, tmp_path):
    """DESIGN.md: a manifest's path is relative to its folder, or absolute. With absolute
    image paths share still finds each image's mask (matched by the image, not by the
    spelling of its path): the reader's CAM lies in the brows only, so their share is 1."""
    run = _reader_run(tmp_path, _rows(brows_world, tmp_path, absolute=True))
    r = str(run)
    assert main(["explain", "--run", r, "--methods", "cam", *QUIET]) == 0
    assert main(["share", "--run", r, "--bootstrap", "50", *QUIET]) == 0
    summary = pd.read_csv(run / "share" / "cam_test" / "summary.csv", keep_default_na=False)
    row = summary[(summary["selection"] == "all") & (summary["split"] == "all")]
    assert row.set_index("region").loc["brows", "share"] == pytest.approx(1.0, abs=1e-9)
