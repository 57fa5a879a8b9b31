"""Bring your own model: adopt (torchvision state dicts, module:function, ONNX, pt2,
pickles) and export, end to end through the CLI, against hand computations."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from conftest import faces_manifest, model_inputs
from torch import nn

from saliency.cli import main
from saliency.data.manifest import read_manifest
from saliency.data.regions import REGION_CODES
from saliency.methods.store import read_maps
from saliency.models.checkpoint import load_model
from saliency.models.preprocess import Preprocessing, model_input
from saliency.rundir import best_checkpoint

SIZE = 64
PRE = Preprocessing(size=SIZE)  # ImageNet mean and std: adopt's default


@pytest.fixture(scope="module")
def faces(tmp_path_factory, synth_small) -> Path:
    """16 of the synthetic faces, all in the test split, masks included (absolute paths)."""
    return faces_manifest(synth_small, tmp_path_factory.mktemp("faces"), 16)


@pytest.fixture(scope="module")
def images(faces) -> torch.Tensor:
    """The faces as the normalized inputs the adopted runs classify ``[16, 3, 64, 64]``."""
    return model_inputs(faces, PRE)


def _adopt(out: Path, *args: str) -> int:
    return main(["adopt", "--out", str(out), "--size", str(SIZE), *args])


def _predictions(run: Path) -> pd.DataFrame:
    assert main(["evaluate", "--run", str(run), "--workers", "0"]) == 0
    return pd.read_csv(run / "eval" / "test" / "predictions.csv")


def test_resnet50_state_dict_with_module_prefixes_adopts_evaluates_and_explains(
    tmp_path, faces, images
):
    torch.manual_seed(0)
    net = torchvision.models.resnet50(num_classes=2).eval()
    weights = tmp_path / "r50.pth"  # as DataParallel saves it, in a wrapper dict
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, weights)
    run = tmp_path / "run"
    assert _adopt(run, "--weights", str(weights), "--arch", "resnet50",
                  "--classes", "female,male", "--manifest", str(faces)) == 0  # fmt: skip
    model, pre, classes, ckpt = load_model(best_checkpoint(run))
    assert classes == ["female", "male"] and pre == PRE
    assert ckpt.adoption["cam_ready"] and ckpt.adoption["channels"] == 2048
    assert ckpt.adopted and ckpt.seed is None and ckpt.train_config is None
    assert ckpt.cam_refusal is None
    with torch.no_grad():
        by_hand = net(images)
        torch.testing.assert_close(model(images), by_hand, rtol=1e-4, atol=1e-4)
    # the fitted linear map is the net's own fc
    torch.testing.assert_close(model.fc.weight, net.fc.weight, rtol=1e-4, atol=1e-5)
    pred = _predictions(run)
    probs = torch.softmax(by_hand, 1).numpy()
    np.testing.assert_allclose(pred[["prob_female", "prob_male"]], probs, atol=1e-5)
    assert main(["explain", "--run", str(run), "--methods", "cam,gradcam", "--limit", "4",
                 "--workers", "0"]) == 0  # fmt: skip
    cam = np.load(run / "saliency/test/cam/maps.npy")
    grad = np.load(run / "saliency/test/gradcam/maps.npy")
    # GAP -> FC: Grad-CAM is CAM divided by the number of cells (the mean's gradient)
    np.testing.assert_allclose(grad * 4, cam, rtol=1e-3, atol=1e-4 * np.abs(cam).max())


def test_multi_head_slice_gives_the_hand_sliced_probabilities(tmp_path, faces, images):
    torch.manual_seed(1)
    net = torchvision.models.resnet18(num_classes=18).eval()  # race 0:7, gender 7:9, age 9:18
    weights = tmp_path / "fairface.pt"
    torch.save(net.state_dict(), weights)
    run = tmp_path / "run"
    args = ["--arch", "resnet18", "--classes", "male,female", "--output-slice", "7:9"]
    assert _adopt(run, "--weights", str(weights), *args, "--manifest", str(faces)) == 0
    with torch.no_grad():
        by_hand = torch.softmax(net(images)[:, 7:9], dim=1).numpy()
    pred = _predictions(run)
    np.testing.assert_allclose(pred[["prob_male", "prob_female"]], by_hand, atol=1e-5)
    model = load_model(best_checkpoint(run))[0]
    torch.testing.assert_close(model.fc.weight, net.fc.weight[7:9], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model.fc.bias, net.fc.bias[7:9], rtol=1e-4, atol=1e-5)


def test_an_adopted_checkpoint_has_no_placeholders_and_an_old_one_still_loads(
    tmp_path, faces, images
):
    """adopt writes no training fields (no train_config, no invented model.loss); a
    checkpoint adopted before, with those placeholders, loads as the same adopted model."""
    from saliency.models.checkpoint import read_checkpoint
    from saliency.runs import Run

    torch.manual_seed(2)
    net = torchvision.models.resnet18(num_classes=2).eval()
    torch.save(net.state_dict(), tmp_path / "r18.pt")
    run = tmp_path / "run"
    assert _adopt(run, "--weights", str(tmp_path / "r18.pt"), "--arch", "resnet18",
                  "--classes", "female,male", "--manifest", str(faces)) == 0  # fmt: skip
    best = best_checkpoint(run)
    raw = torch.load(best, weights_only=True)
    assert "train_config" not in raw and "loss" not in raw["model"]
    assert raw["model"] == {"arch": "adopted", "n_outputs": 2, "output_stride": None}
    old = raw | {"train_config": {"seed": 0, "adopted": True}}
    old["model"] = raw["model"] | {"loss": "ce"}
    torch.save(old, best)  # as adopt wrote it before the checkpoint was typed
    model, _, classes, ckpt = load_model(best)
    assert ckpt.adopted and ckpt.seed is None and ckpt.train_config is None
    assert ckpt.arch == "adopted" and ckpt.n_outputs == 2 and classes == ["female", "male"]
    with torch.no_grad():
        torch.testing.assert_close(model(images), net(images), rtol=1e-4, atol=1e-4)
    assert "train_config" not in read_checkpoint(best).to_dict()
    assert Run(run).adopted and Run(run).adoption()["cam_ready"]


FLAT_HEAD = """
import torch
from torch import nn

def build():
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 16 * 16, 2),
    )
"""


def test_flatten_linear_head_refuses_cam_and_runs_gradcam_ig_and_ablate(
    tmp_path, faces, images, monkeypatch, capsys
):
    (tmp_path / "flatnet.py").write_text(textwrap.dedent(FLAT_HEAD))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    assert _adopt(run, "--function", "flatnet:build", "--classes", "female,male",
                  "--manifest", str(faces)) == 0  # fmt: skip
    assert "cam refused: the logits are not a linear map" in capsys.readouterr().out
    model = load_model(best_checkpoint(run))[0]
    assert model.fc is None
    code = main(["explain", "--run", str(run), "--methods", "cam", "--workers", "0"])
    assert code == 2 and "cam does not apply to this model" in capsys.readouterr().err
    assert main(["explain", "--run", str(run), "--limit", "6", "--workers", "0"]) == 0
    assert "cam left out" in capsys.readouterr().out
    assert {p.name for p in (run / "saliency/test").iterdir()} == {"gradcam", "ig"}
    # Grad-CAM by hand: the gradient of the target logit at the last ReLU, averaged over
    # the cells, weighting that ReLU's maps
    net = sys.modules["flatnet"].build().eval()
    from saliency.methods.gradcam import grad_cam_grid

    x, target = images[:6], torch.tensor([0, 1, 0, 1, 0, 1])
    a = net[:4](x).detach().requires_grad_(True)
    score = net[4:](a).gather(1, target[:, None]).sum()
    (g,) = torch.autograd.grad(score, a)
    by_hand = torch.einsum("nc,nchw->nhw", g.mean(dim=(2, 3)), a.detach())
    torch.testing.assert_close(grad_cam_grid(model, x, target), by_hand, rtol=1e-4, atol=1e-6)
    assert main(["ablate", "--run", str(run), "--region", "eyes", "--workers", "0"]) == 0
    per = pd.read_csv(run / "ablation/eyes_blur_delete/per_image.csv")
    df = read_manifest(faces).df
    assert [str((faces.parent / p).resolve()) for p in per["path"]] == list(df["path"])
    # per image, in manifest order: score_before is the true class's logit of the face as
    # the net classifies it (by hand), score_after the same net's on the face with the eyes
    # deleted by hand (_eyes_deleted); CSV floats and one forward pass: 1e-6 is ample
    true = torch.tensor([int(label == "male") for label in df["label"]])
    deleted = np.stack([_eyes_deleted(p, m) for p, m in zip(df["path"], df["mask"], strict=True)])
    with torch.no_grad():
        before = net(images).gather(1, true[:, None])[:, 0].numpy()
        after = net(model_input(torch.from_numpy(deleted), PRE)).gather(1, true[:, None])[:, 0]
    np.testing.assert_allclose(per["score_before"], before, rtol=1e-5, atol=1e-5)
    probs = torch.softmax(net(images), 1).gather(1, true[:, None])[:, 0].detach().numpy()
    np.testing.assert_allclose(per["prob_before"], probs, atol=1e-6)
    np.testing.assert_allclose(per["score_after"], after.numpy(), rtol=0, atol=1e-6)
    assert (np.abs(after.numpy() - before) > 1e-4).all()  # every score moves: 100x the tolerance
    # (the report's PNGs only, at a screen's dpi: the figures' own promises are test_figures.py's)
    figures = ["figures", "--run", str(run), "--format", "png", "--dpi", "60"]
    assert main(figures) == 0 and main(["report", "--run", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "function flatnet:build" in page and "cam refused: the logits are not a linear" in page


def _eyes_deleted(image_path: str, mask_path: str) -> np.ndarray:
    """The reference blur deletion of the eyes at 64 px, by hand from DESIGN.md ("Regions"):
    dilate with a square of radius round(2 * 4 * 64 / 224) = 2 px, feather with a Gaussian
    of sigma 5 * 64 / 224 truncated at 3 sigma (half-width 5 px), alpha-blend the 5 x 5 box
    blur (the odd size nearest 15 * 64 / 224 = 4.3) through it; the other features' own
    pixels (brows, nose, mouth) keep weight 0. Outside 2 + 5 px of the eyes nothing changes."""
    from saliency.data.imageio import read_label_map, read_rgb

    image, labels = read_rgb(image_path), read_label_map(mask_path)
    eyes = (labels == REGION_CODES["eyes"]).astype(np.uint8)
    sigma = 5 * SIZE / 224
    alpha = cv2.GaussianBlur(cv2.dilate(eyes, np.ones((5, 5), np.uint8)).astype(np.float64),
                             (11, 11), sigma, sigma)  # fmt: skip
    alpha[np.isin(labels, [REGION_CODES[r] for r in ("brows", "nose", "mouth")])] = 0.0
    far = cv2.dilate(eyes, np.ones((15, 15), np.uint8)) == 0  # Chebyshev distance > 7 px
    assert (alpha[far] == 0).all() and alpha.max() > 0.9
    a = alpha[..., None]
    mixed = image * (1 - a) + cv2.blur(image, (5, 5)).astype(np.float64) * a
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


class _Softmaxed(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def test_onnx_ending_in_softmax_is_explained_on_its_logits(tmp_path, faces, images):
    import warnings

    import onnxruntime as ort

    from saliency.models.zoo import ModelSpec, build_model

    torch.manual_seed(4)
    net = build_model(ModelSpec(arch="resnet18", n_outputs=2, loss="ce", dropout=0.0)).eval()
    path = tmp_path / "ours_softmax.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Softmaxed(net).eval(), (images[:2],), str(path), dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["p"],
                          dynamic_axes={"input": {0: "n"}, "p": {0: "n"}})  # fmt: skip
    run = tmp_path / "run"
    assert _adopt(run, "--weights", str(path), "--classes", "female,male",
                  "--manifest", str(faces)) == 0  # fmt: skip
    rec = load_model(best_checkpoint(run))[3].adoption
    assert rec["cut_off"] == "softmax" and rec["output"] == "logits" and rec["cam_ready"]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    by_ort = sess.run(None, {"input": images.numpy()})[0]
    np.testing.assert_allclose(_predictions(run)[["prob_female", "prob_male"]], by_ort, atol=1e-5)
    assert main(["explain", "--run", str(run), "--methods", "ig", "--ig-steps", "64",
                 "--ig-baseline", "black", "--limit", "4", "--workers", "0"]) == 0  # fmt: skip
    index = pd.read_csv(run / "saliency/test/ig/index.csv")
    meta = json.loads((run / "saliency/test/ig/meta.json").read_text())
    assert meta["explained_output"] == "logits, before the model's trailing softmax"
    # IG's completeness is on the logit: delta is the logit's change from the black image
    with torch.no_grad():
        black = model_input(torch.zeros(1, SIZE, SIZE, 3, dtype=torch.uint8), PRE)
        logit = net(images[:4]) - net(black)
    target = torch.tensor([0 if t == "female" else 1 for t in index["target"]])
    np.testing.assert_allclose(index["ig_delta"], logit.gather(1, target[:, None])[:, 0], atol=1e-4)
    # and the maps sum to it (absolute error: one image's delta is near zero)
    assert (index["ig_error"] * index["ig_delta"].abs()).max() < 0.01


def test_a_pickle_is_refused_without_trust(tmp_path, faces, images, capsys):
    net = torchvision.models.resnet18(num_classes=2).eval()
    path = tmp_path / "whole.pt"
    torch.save(net, path)
    code = _adopt(tmp_path / "run", "--weights", str(path), "--classes", "female,male")
    assert code == 2 and "--trust-pickle" in capsys.readouterr().err
    assert not best_checkpoint(tmp_path / "run").exists()
    assert _adopt(tmp_path / "run", "--weights", str(path), "--classes", "female,male",
                  "--trust-pickle", "--manifest", str(faces)) == 0  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(load_model(best_checkpoint(tmp_path / "run"))[0](images),
                                   net(images), rtol=1e-4, atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_exports_round_trip_through_adopt(tmp_path, tiny_run, synth_tiny, fmt, capsys):
    out = tmp_path / f"model.{fmt}"
    assert main(["export", "--run", str(tiny_run), "--format", fmt, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "max abs difference of the logits" in said
    info = json.loads(Path(f"{out}.preprocessing.json").read_text())
    assert info["check"]["max_abs_difference"] < 1e-4 and info["classes"] == ["female", "male"]
    run = tmp_path / "adopted"  # classes and preprocessing come from the file beside it
    assert main(["adopt", "--out", str(run), "--weights", str(out),
                 "--manifest", str(synth_tiny / "manifest.csv")]) == 0  # fmt: skip
    ours = pd.read_csv(tiny_run / "eval" / "test" / "predictions.csv")
    theirs = _predictions(run)
    assert list(theirs["path"]) == list(ours["path"])
    assert (theirs["pred"] == ours["pred"]).all()
    np.testing.assert_allclose(theirs["prob_male"], ours["prob_male"], atol=1e-5)


def test_an_onnx_file_with_a_fixed_batch_or_size_is_refused_with_what_to_do(tmp_path, capsys):
    import warnings

    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(2, 2)).eval()  # fmt: skip
    path = tmp_path / "fixed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False,
                          opset_version=17)  # fmt: skip
    assert _adopt(tmp_path / "run", "--weights", str(path), "--classes", "female,male") == 2
    assert "fixes the batch size to 1" in capsys.readouterr().err


def test_a_study_adopts_a_model_and_runs_every_stage_on_it(tmp_path, faces, images, capsys):
    torch.manual_seed(5)
    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), tmp_path / "r18.pth")
    toml = tmp_path / "mine.toml"
    toml.write_text(
        textwrap.dedent(f"""
        [study]
        out = "{tmp_path / "study"}"
        device = "cpu"
        workers = 0
        [data]
        source = "manifest"
        path = "{faces}"
        [adopt]
        weights = "r18.pth"
        arch = "resnet18"
        classes = ["female", "male"]
        size = {SIZE}
        [evaluate]
        [explain]
        methods = ["cam", "gradcam"]
        [ablate]
        regions = ["eyes"]
        [figures]
        formats = ["png"]  # the report's; PDFs and 300 dpi are test_figures.py's
        dpi = 60
        [report]
    """)
    )
    assert main(["run", str(toml)]) == 0
    run = tmp_path / "study" / "run"
    assert load_model(best_checkpoint(run))[3].adoption["cam_ready"]
    # the study's maps: one row per test face, indexed like evaluate's predictions (same
    # order, probabilities, predicted class; the default target is the predicted class)
    pred = pd.read_csv(run / "eval/test/predictions.csv", keep_default_na=False)
    assert len(pred) == 16
    cam, index, _ = read_maps(run / "saliency/test/cam")
    grad, grad_index, _ = read_maps(run / "saliency/test/gradcam")
    assert cam.shape == grad.shape == (16, SIZE, SIZE)
    for idx in (index, grad_index):
        assert list(idx["path"]) == list(pred["path"]) and list(idx["label"]) == list(pred["label"])
        assert list(idx["target"]) == list(idx["pred"]) == list(pred["pred"])
        np.testing.assert_allclose(idx["prob_male"], pred["prob_male"], atol=1e-6)
    # row k is image k's CAM: by hand, the torchvision net's fc row of the target weighting
    # its last block's maps (a 2 x 2 grid at 64 px), which the stored maps upsample by one
    # linear operator L for every row, M_k = L(grid_k): a least-squares fit of L over the 16
    # rows leaves no residual; rows of other images would
    net = torchvision.models.resnet18(num_classes=2).eval()
    net.load_state_dict(torch.load(tmp_path / "r18.pth", weights_only=True))
    target = torch.tensor([int(t == "male") for t in index["target"]])
    with torch.no_grad():
        maps = nn.Sequential(*list(net.children())[:-2])(images)  # [16, 512, 2, 2]
        grid = torch.einsum("nc,nchw->nhw", net.fc.weight[target], maps).flatten(1).numpy()
    flat = cam.reshape(16, -1).astype(np.float64)

    def residual(g):  # the best linear fit's largest residual, relative to the maps' scale
        return np.abs(g @ np.linalg.lstsq(g, flat, rcond=None)[0] - flat).max() / np.abs(flat).max()

    assert residual(grid) < 1e-4 and residual(grid[::-1]) > 0.01  # measured: 1e-7 and 0.33
    # and Grad-CAM, row for row, is CAM over the cell count (the mean's gradient)
    np.testing.assert_allclose(grad * 4, cam, rtol=1e-3, atol=1e-4 * np.abs(cam).max())
    assert "resnet18 from" in (run / "report.html").read_text()
    capsys.readouterr()
    assert main(["run", str(toml)]) == 0  # everything done: every stage skipped
    out = capsys.readouterr().out
    for stage in ("data", "adopt", "evaluate", "explain", "ablate", "figures", "report"):
        assert f"  {stage:10s} skip   done with the same settings" in out


@pytest.mark.parametrize(
    ("tables", "message"),
    [("[train]\n[adopt]\n", "keep [train] or [adopt], not both"),
     ("[adopt]\n[null]\n", "drop [null]")],
)  # fmt: skip
def test_a_study_adopts_or_trains_and_an_adopted_one_has_no_null(tmp_path, tables, message):
    from saliency.study.config import load

    path = tmp_path / "s.toml"
    path.write_text("[data]\n" + tables)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(path)
