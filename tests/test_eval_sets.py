"""A run's images and named evaluation sets (issue 32, item 5): the first manifest a run is
given becomes its images (an adopted run without --manifest: the first ``evaluate
--manifest``, recorded in RUN/images.json), and another data set is evaluated under a name
(``--name other`` -> RUN/eval/other/), never over RUN/eval/<split>/."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saliency.cli import main
from saliency.data.imageio import write_rgb
from saliency.data.manifest import write_manifest
from saliency.models.checkpoint import file_sha256
from saliency.runs import Run

SIZE = 16
QUIET = ["--workers", "0", "--device", "cpu"]
NET = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2),
    )
"""


def _faces(folder: Path, n: int, seed: int, splits: list[str] | None) -> Path:
    """``n`` random 16 px images and their manifest (a split column when ``splits``)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    rows = []
    for i in range(n):
        path = folder / f"img{i:02d}.png"
        write_rgb(path, rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
        row = {"path": path.name, "label": ("female", "male")[i % 2], "group": "AB"[i // 2 % 2]}
        if splits:
            row["split"] = splits[i]
        rows.append(row)
    return write_manifest(pd.DataFrame(rows), folder / "manifest.csv")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """``own``: 10 faces, 4 train and 6 test (2 of them without a split); ``other``: 6
    faces of another data set, no split column; ``net``: the model's module folder."""
    root = tmp_path_factory.mktemp("eval_sets")
    (root / "net").mkdir()
    (root / "net" / "evalsetnet.py").write_text(textwrap.dedent(NET))
    splits = ["train", "train", "test", "test", "", "test", "train", "train", "test", ""]
    own = _faces(root / "own", 10, 1, splits)
    return {"own": own, "other": _faces(root / "other", 6, 2, None), "net": root / "net"}


@pytest.fixture
def adopted(tmp_path, data, monkeypatch) -> Path:
    """A run adopted from a tiny CNN without --manifest: it names no images."""
    monkeypatch.syspath_prepend(str(data["net"]))
    run = tmp_path / "run"
    assert main(["adopt", "--out", str(run), "--function", "evalsetnet:build", "--classes",
                 "female,male", "--size", str(SIZE)]) == 0  # fmt: skip
    assert not (run / "images.json").exists()
    return run


@pytest.fixture
def evaluated(adopted, data, capsys) -> Path:
    """``adopted`` evaluated on ``own``: ``own`` is its images."""
    assert main(["evaluate", "--run", str(adopted), "--manifest", str(data["own"]), *QUIET]) == 0
    capsys.readouterr()
    return adopted


def _images(manifest: Path, tests_only: bool = True) -> list[Path]:
    """The manifest's image files (its test rows, with those without a split)."""
    df = pd.read_csv(manifest, keep_default_na=False)
    if tests_only and "split" in df:
        df = df[df["split"].isin(["test", ""])]
    return [(manifest.parent / p).resolve() for p in df["path"]]


def _paths(csv: Path, manifest: Path) -> list[Path]:
    return [(manifest.parent / p).resolve() for p in pd.read_csv(csv)["path"]]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), err
    return err


def test_explain_finds_the_images_the_first_evaluate_manifest_gave(evaluated, data, capsys):
    run, own = evaluated, data["own"]
    assert _paths(run / "eval/test/predictions.csv", own) == _images(own)
    assert main(["explain", "--run", str(run), "--methods", "gradcam", *QUIET]) == 0
    assert _paths(run / "saliency/test/gradcam/index.csv", own) == _images(own)  # 6 test rows
    assert main(["ablate", "--run", str(run), "--region", "eyes", *QUIET]) == 2
    _one_line_error(capsys, f"{own} has no 'mask' column")  # its rows were found: no masks


def test_the_images_are_recorded_and_a_later_evaluate_uses_them(evaluated, data, capsys):
    run, own = evaluated, data["own"]
    rec = json.loads((run / "images.json").read_text())
    assert rec["manifest"] == str(own.resolve()) and rec["sha256"] == file_sha256(own)
    assert rec["set_by"] == "evaluate" and rec["unsplit"] == "test"
    assert Run(run).images().manifest == str(own.resolve())
    before = pd.read_csv(run / "eval/test/predictions.csv")
    assert main(["evaluate", "--run", str(run), "--split", "train", *QUIET]) == 0
    assert main(["evaluate", "--run", str(run), *QUIET]) == 0  # no --manifest
    pd.testing.assert_frame_equal(pd.read_csv(run / "eval/test/predictions.csv"), before)
    assert len(pd.read_csv(run / "eval/train/predictions.csv")) == 4
    assert main(["evaluate", "--run", str(run), "--manifest", str(own), *QUIET]) == 0  # itself
    # the recorded manifest changed: one line, for every command that reads the images
    own.write_text(own.read_text() + "img00.png,female,A,test\n")
    try:
        for command in (["evaluate"], ["explain", "--methods", "gradcam"]):
            assert main([*command, "--run", str(run), *QUIET]) == 2
            _one_line_error(capsys, "changed since it became the run's images", "images.json")
    finally:
        own.write_text("".join(own.read_text().splitlines(keepends=True)[:-1]))


def test_another_manifest_without_a_name_is_refused_and_changes_nothing(evaluated, data, capsys):
    run = evaluated
    kept = {p.name: _sha(p) for p in (run / "eval/test").iterdir()}
    argv = ["evaluate", "--run", str(run), "--manifest", str(data["other"]), *QUIET]
    assert main(argv) == 2
    _one_line_error(capsys, "--name NAME", str(data["other"]))
    assert {p.name: _sha(p) for p in (run / "eval/test").iterdir()} == kept
    assert [p.name for p in (run / "eval").iterdir()] == ["test"]


def test_a_named_set_writes_its_own_folder_from_the_other_rows(evaluated, data, capsys):
    run, other = evaluated, data["other"]
    kept = {p.name: _sha(p) for p in (run / "eval/test").iterdir()}
    images = (run / "images.json").read_text()
    argv = ["evaluate", "--run", str(run), "--manifest", str(other), "--name", "other", *QUIET]
    assert main(argv) == 0
    assert "other (test rows of" in capsys.readouterr().out
    folder = run / "eval/other"
    assert {"predictions.csv", "metrics.json", "group_accuracy.csv", "confusion.png",
            "roc.png", "reliability.png"} <= {p.name for p in folder.iterdir()}  # fmt: skip
    assert _paths(folder / "predictions.csv", other) == _images(other, tests_only=False)
    assert {p.name: _sha(p) for p in (run / "eval/test").iterdir()} == kept
    assert (run / "images.json").read_text() == images  # a named set never becomes the images
    recorded = json.loads((run / "config.json").read_text())["commands"]["evaluate:other"]
    assert recorded["config"]["manifest"] == str(other) and recorded["config"]["split"] == "test"
    found = Run(run).evaluations()
    assert [(e.name, e.named, e.split) for e in found] == [("test", False, "test"),
                                                           ("other", True, "test")]  # fmt: skip
    assert main(argv) == 0  # the same set again: allowed
    again = ["evaluate", "--run", str(run), "--manifest", str(data["own"]), "--name", "other"]
    assert main([*again, *QUIET]) == 2  # another manifest under a taken name
    _one_line_error(capsys, "holds an evaluation of", "another --name")


@pytest.mark.parametrize(
    "name, words",
    [("test", ["a split"]), ("all", ["a split"]), ("a/b", ["letters, digits"]),
     ("../up", ["letters, digits"]), (".hidden", ["letters, digits"])],
)  # fmt: skip
def test_a_bad_name_is_one_line(tmp_path, data, capsys, name, words):
    run = tmp_path / "none"  # the name is checked before the run is even read
    argv = ["evaluate", "--run", str(run), "--manifest", str(data["other"]), "--name", name]
    assert main(argv) == 2
    _one_line_error(capsys, "--name", *words)
    assert not run.exists()


def test_a_name_needs_a_manifest_and_one_split_and_a_run_without_images_keeps_none(
    adopted, data, capsys
):
    run = adopted
    assert main(["evaluate", "--run", str(run), "--name", "other", *QUIET]) == 2
    _one_line_error(capsys, "pass its --manifest")
    argv = ["evaluate", "--run", str(run), "--manifest", str(data["other"]), "--name", "other"]
    assert main([*argv, "--split", "test", "--split", "val", *QUIET]) == 2
    _one_line_error(capsys, "one --split")
    assert main([*argv, *QUIET]) == 0
    assert not (run / "images.json").exists()  # still no images: explain says so
    assert main(["explain", "--run", str(run), "--methods", "gradcam", *QUIET]) == 2
    _one_line_error(capsys, "names no images", "--manifest")


def test_a_trained_runs_images_are_its_training_manifest(brows_reader_run, tmp_path, data, capsys):
    """A checkpoint that names its images (here the hand-weighted reader's, trained-style):
    another manifest needs --name (it used to replace eval/test/ silently)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(brows_reader_run / "checkpoints", run / "checkpoints")
    argv = ["evaluate", "--run", str(run), "--manifest", str(data["other"]), *QUIET]
    assert main(argv) == 2
    _one_line_error(capsys, "--name NAME", "brows_world")
    assert not (run / "eval").exists() and not (run / "images.json").exists()
    assert main([*argv, "--name", "other"]) == 0
    assert len(pd.read_csv(run / "eval/other/predictions.csv")) == 6
