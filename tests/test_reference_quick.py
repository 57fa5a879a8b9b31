"""A reference template's ``quick`` profile end to end, as a user runs it on their own data:
``saliency run analyses/ref_resnet_cam_scratch.toml --profile quick --data FOLDER`` on a
Kaggle-style image folder (``Training/<class>/``, ``Validation/<class>/``) made from the
session's synthetic faces. The recipe (ResNet-50 from scratch, two outputs, Adam at 0.1 with
the x0.1 step schedule) is what trains; the profile shrinks only data, size and epochs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import shared

from saliency.cli import main
from saliency.study.config import load

TEMPLATE = Path(__file__).resolve().parent.parent / "analyses" / "ref_resnet_cam_scratch.toml"


@pytest.fixture(scope="module")
def folder(tmp_path_factory, synth_tiny):
    """synth_tiny's first 64 faces: train and val under Training/, test under Validation/."""

    def build(out):
        df = pd.read_csv(synth_tiny / "manifest.csv").head(64)
        for row in df.itertuples():
            top = "Validation" if row.split == "test" else "Training"
            dest = out / top / row.label / row.path.split("/")[-1]
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(synth_tiny / row.path, dest)

    return shared(tmp_path_factory, "kaggle_folder", build)


@pytest.mark.slow  # a whole study end to end (~12 s): `make test-slow`, run by CI
def test_the_quick_profile_runs_the_recipe_end_to_end(folder, tmp_path):
    out = tmp_path / "study"
    argv = ["run", str(TEMPLATE), "--profile", "quick", "--data", str(folder),
            "--out", str(out), "--device", "cpu", "--workers", "0"]  # fmt: skip
    assert main(argv) == 0
    quick = load(TEMPLATE, "quick").stages
    config = json.loads((out / "run" / "config.json").read_text())
    trained = config["commands"]["train"]["config"]
    for key in ("arch", "loss", "optimizer", "lr", "scheduler", "step_size", "gamma", "freeze"):
        assert trained[key] == quick["train"][key], key  # the recipe, as the template says
    assert trained["size"] == 64 and trained["arch"] == "resnet50"
    log = pd.read_csv(out / "run" / "train_log.csv")
    assert len(log) == quick["train"]["epochs"] and (log["lr"] == 0.1).all()
    manifest = pd.read_csv(out / "data" / "manifest.csv")
    assert set(manifest["split"]) == {"train", "val", "test"}  # Validation/ is the test set
    assert manifest.groupby(["split", "label"]).size().max() <= 100  # per_cell
    metrics = json.loads((out / "run" / "eval" / "test" / "metrics.json").read_text())
    assert metrics["accuracy"]["all"]["n"] == (manifest["split"] == "test").sum()
    for method in ("cam", "gradcam", "ig"):
        assert (out / "run" / "saliency" / "test" / method / "maps.npy").is_file()
    assert (out / "run" / "figures" / "average_grid.png").is_file()
    assert (out / "run" / "report.html").is_file()
