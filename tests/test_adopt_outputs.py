"""A model with several outputs (age, gender logits, gender probabilities, as face toolkits
ship them): adopt keeps the one named by --output-name, cuts the others off, and refuses
without it in one line listing them all."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import faces_manifest, model_inputs
from hand_models import AgeGender

from saliency.cli import main
from saliency.models.adopted.record import build
from saliency.models.checkpoint import load_model
from saliency.models.preprocess import Preprocessing
from saliency.rundir import best_checkpoint

SIZE = 32
PRE = Preprocessing(size=SIZE)


@pytest.fixture(scope="module")
def faces(tmp_path_factory, synth_small) -> Path:
    """8 of the synthetic faces, all in the test split, masks included (absolute paths)."""
    return faces_manifest(synth_small, tmp_path_factory.mktemp("faces"), 8)


@pytest.fixture(scope="module")
def images(faces) -> torch.Tensor:
    return model_inputs(faces, PRE)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory, images) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "age_gender.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(AgeGender().eval(), (images[:2],), str(path), dynamo=False,
                          input_names=["input"], dynamic_axes={"input": {0: "batch"}},
                          output_names=["age", "gender_logits", "gender_prob"])  # fmt: skip
    return path


def _adopt(run: Path, weights: Path, faces: Path, *extra: str) -> int:
    return main(["adopt", "--out", str(run), "--size", str(SIZE), "--weights", str(weights),
                 "--classes", "female,male", "--manifest", str(faces), *extra])  # fmt: skip


def test_without_output_name_the_refusal_lists_all_three(tmp_path, onnx_file, faces, capsys):
    run = tmp_path / "run"
    assert _adopt(run, onnx_file, faces) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for name in ("age [1]", "gender_logits [2]", "gender_prob [2]", "--output-name"):
        assert name in err
    assert not best_checkpoint(run).exists()
    assert _adopt(run, onnx_file, faces, "--output-name", "height") == 2
    assert "--output-name height" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["gender_logits", "gender_prob"])
def test_the_chosen_output_is_explained_as_the_gender_logits(
    tmp_path, onnx_file, faces, images, name, capsys
):
    run = tmp_path / "run"
    assert _adopt(run, onnx_file, faces, "--output-name", name) == 0
    assert f"output {name} of 3" in capsys.readouterr().out
    model, _, classes, ckpt = load_model(best_checkpoint(run))
    net = AgeGender().eval()
    with torch.no_grad():
        by_hand = net.gender(net.conv(images).relu().mean((2, 3)))  # before any softmax
        torch.testing.assert_close(model(images), by_hand, rtol=1e-5, atol=1e-5)
    rec = ckpt.adoption
    assert rec["output_name"] == name and rec["output_index"] == [
        "age",
        "gender_logits",
        "gender_prob",
    ].index(name)
    assert rec["outputs"] == [["age", [1]], ["gender_logits", [2]], ["gender_prob", [2]]]
    assert rec["cut_off"] == ("softmax" if name == "gender_prob" else None)
    # the age head is cut off: the adopted model holds the conv and one 4 -> 2 map only
    assert sum(p.numel() for p in model.state_dict().values()) == (3 * 4 * 9 + 4) + (4 * 2 + 2)
    assert main(["evaluate", "--run", str(run), "--workers", "0"]) == 0
    pred = pd.read_csv(run / "eval/test/predictions.csv")
    probs = torch.softmax(by_hand, 1).numpy()
    np.testing.assert_allclose(pred[["prob_female", "prob_male"]], probs, atol=1e-5)


@pytest.mark.parametrize(("as_dict", "name", "index"), [(False, "1", 1), (True, "gender", 1)])
def test_a_torch_module_returning_a_tuple_or_dict_keeps_the_named_one(images, as_dict, name, index):
    net = AgeGender(as_dict).eval()
    model, rec = build(net, images, 2, output_name=name)
    with torch.no_grad():
        by_hand = net.gender(net.conv(images).relu().mean((2, 3)))
        torch.testing.assert_close(model(images), by_hand, rtol=1e-5, atol=1e-5)
    assert rec["output_index"] == index
    listed = "age [1], gender [2]" if as_dict else "0 [1], 1 [2], 2 [2]"
    with pytest.raises(ValueError) as refusal:
        build(net, images, 2)
    assert f"has {3 - as_dict} outputs: {listed}; choose" in str(refusal.value)


def test_a_truncated_onnx_file_is_one_line(tmp_path, onnx_file, faces, capsys):
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(onnx_file.read_bytes()[:300])
    assert _adopt(tmp_path / "run", bad, faces) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a readable ONNX file" in err
