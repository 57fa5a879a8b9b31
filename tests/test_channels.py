"""Channel order: a model built for BGR input, adopted with --color bgr, reads the same image
files as its RGB twin does; adopted as RGB it reads them wrong, and adopt's check says so."""

from __future__ import annotations

import json
import textwrap

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from saliency.cli import main
from saliency.data.manifest import write_manifest
from saliency.models.checkpoint import load_model
from saliency.models.preprocess import Preprocessing, normalize
from saliency.rundir import best_checkpoint

TWINS = """
import torch
from torch import nn

def _build(weights):
    conv = nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights).view(1, 3, 1, 1))
    fc = nn.Linear(1, 1)
    with torch.no_grad():
        fc.weight.fill_(4.0)
        fc.bias.zero_()
    return nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)

def rgb():  # logit 4 (mean red - mean blue) of its input's channels 0 and 2
    return _build([1.0, 0.0, -1.0])

def bgr():  # the same, for input whose channel 0 is blue
    return _build([-1.0, 0.0, 1.0])
"""
SIZE = 16


@pytest.fixture(scope="module")
def tinted(tmp_path_factory):
    """24 images: 'male' ones redder than blue, 'female' ones bluer, with noise; and the
    twins' module on the path."""
    root = tmp_path_factory.mktemp("tinted")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        male = i % 2 == 1
        rgb = rng.uniform(60, 200, size=(SIZE, SIZE, 3))
        rgb[..., 0 if male else 2] += rng.uniform(20, 50)
        path = root / f"img{i:02d}.png"
        cv2.imwrite(str(path), np.clip(rgb, 0, 255).astype(np.uint8)[..., ::-1])  # file: BGR
        rows.append({"path": str(path), "label": "male" if male else "female", "split": "test"})
    manifest = write_manifest(pd.DataFrame(rows), root / "manifest.csv")
    (root / "twins.py").write_text(textwrap.dedent(TWINS))
    return root, manifest


def _adopt(run, manifest, function, *extra) -> int:
    return main(["adopt", "--out", str(run), "--function", function, "--classes", "female,male",
                 "--size", str(SIZE), "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5",
                 "--manifest", str(manifest), *extra])  # fmt: skip


def _logits(run) -> np.ndarray:
    assert main(["evaluate", "--run", str(run), "--workers", "0"]) == 0
    return pd.read_csv(run / "eval" / "test" / "predictions.csv")["logit"].to_numpy()


def test_normalize_reorders_the_channels_for_a_bgr_model():
    unit = torch.rand(2, 3, 4, 4)
    rgb = Preprocessing(size=4, mean=(0.1, 0.2, 0.3), std=(0.5, 0.6, 0.7))
    bgr = Preprocessing(size=4, mean=(0.3, 0.2, 0.1), std=(0.7, 0.6, 0.5), color="BGR")
    torch.testing.assert_close(normalize(unit, bgr), normalize(unit, rgb).flip(1))
    with pytest.raises(ValueError, match="unknown channel order"):
        Preprocessing(size=4, color="GRB")


def test_a_bgr_model_adopted_as_bgr_reads_what_its_rgb_twin_reads(tinted, tmp_path, monkeypatch,
                                                                  capsys):  # fmt: skip
    root, manifest = tinted
    monkeypatch.syspath_prepend(str(root))
    assert _adopt(tmp_path / "rgb", manifest, "twins:rgb") == 0
    said_rgb = capsys.readouterr().out
    assert "channel order: accuracy 100.0% as RGB, 0.0% as BGR (24 images)" in said_rgb
    assert "warning" not in said_rgb
    assert _adopt(tmp_path / "bgr", manifest, "twins:bgr", "--color", "bgr") == 0
    said_bgr = capsys.readouterr().out
    assert "16 px, BGR" in said_bgr and "100.0% as BGR, 0.0% as RGB" in said_bgr
    reference = _logits(tmp_path / "rgb")
    np.testing.assert_allclose(_logits(tmp_path / "bgr"), reference, rtol=1e-5, atol=1e-6)
    assert ((reference > 0) == (np.arange(24) % 2 == 1)).all()  # the twins are right
    # the BGR model adopted as RGB: other logits (negated), and adopt says which order it reads
    assert _adopt(tmp_path / "wrong", manifest, "twins:bgr") == 0
    said = capsys.readouterr().out
    assert "accuracy 0.0% as RGB, 100.0% as BGR" in said
    assert "warning: the model reads BGR clearly better" in said and "--color bgr" in said
    np.testing.assert_allclose(_logits(tmp_path / "wrong"), -reference, rtol=1e-5, atol=1e-6)
    # recorded with the run: every later command builds its input from the checkpoint
    assert load_model(best_checkpoint(tmp_path / "bgr"))[1].color == "BGR"
    check = json.loads((tmp_path / "wrong" / "model" / "adopted.json").read_text())
    assert check["channel_check"]["other_better"] and check["channel_check"]["n"] == 24
