"""Options and failure paths that no other test reaches, each against a known answer.

- ``average --norm minmax|sum|none|max`` and ``--maps-split``: on the brows reader explained
  for the male logit, whose CAM is ``w * t * (d - 0.5)`` (negative in a woman's light brows,
  positive in a man's dark ones), each stored mean is the numpy mean of the maps normalized
  here from the documented definitions; ``--maps-split val`` averages the val split's maps.
- ``explain --ig-tolerance``: on a hand-built net ``z = exp(a * mean(x))`` the 2-point
  Gauss-Legendre IG has a closed-form completeness error per image, so the number of
  images warned about at each tolerance is known before the command runs.
- ``export`` fails (exit 2, one line) when the exported program's logits differ by more than
  1e-4, and records the difference; ``adopt`` records onnxruntime's difference and refuses a
  conversion that differs; ``--output``, ``--target-layer`` and ``--function`` with
  ``--weights`` change exactly what they promise; rows without a split count as ``test``.
"""

from __future__ import annotations

import json
import os
import re
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import BROWS_SIZE, brows_world_labels

from saliency.cli import main
from saliency.data.imageio import read_rgb
from saliency.data.regions import REGION_CODES
from saliency.methods.store import read_maps
from saliency.models.checkpoint import load_model
from saliency.rundir import best_checkpoint

W = 400.0
BROWS = brows_world_labels() == REGION_CODES["brows"]
IMAGENET = (np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]))


def unit_images(paths) -> np.ndarray:
    """The stored images in [0, 1], ``[N, H, W, 3]`` (stored at the model's size)."""
    return np.stack([read_rgb(p).astype(np.float64) / 255 for p in paths])


def hand_norm(maps: np.ndarray, norm: str) -> np.ndarray:
    """Each map normalized by the definition README and ``--help`` give for ``norm``."""
    out = []
    for m in maps.astype(np.float64):
        if norm == "minmax":
            m = (m - m.min()) / (m.max() - m.min())
        elif norm == "max":
            m = m / np.abs(m).max()
        elif norm == "sum":
            m = m / np.abs(m).sum()
        out.append(m)
    return np.stack(out)


@pytest.fixture(scope="module")
def reader_two_splits(tmp_path_factory, brows_world):
    """The brows reader (as conftest builds it) over the brows world with every third face
    moved to ``val``, explained with cam for the male logit on test and on val."""
    from saliency.models.checkpoint import save_checkpoint
    from saliency.models.preprocess import Preprocessing
    from saliency.models.reader_run import reader_checkpoint

    root = tmp_path_factory.mktemp("reader_two_splits")
    df = pd.read_csv(brows_world / "manifest.csv")
    df["path"] = [str(brows_world / p) for p in df["path"]]
    df["mask"] = str(brows_world / "mask.png")
    df.loc[df.index % 3 == 0, "split"] = "val"
    df.to_csv(root / "manifest.csv", index=False)
    run = root / "run"
    template = torch.from_numpy(BROWS).float()
    ckpt = reader_checkpoint(root / "manifest.csv", template, Preprocessing(size=BROWS_SIZE), W)
    save_checkpoint(run / "checkpoints" / "best.pt", ckpt)
    for split in ("test", "val"):
        argv = ["explain", "--run", str(run), "--split", split, "--methods", "cam"]
        assert main([*argv, "--target", "male", "--workers", "0"]) == 0
    return run, df


def expected_cam(df: pd.DataFrame, split: str) -> tuple[np.ndarray, np.ndarray]:
    """CAM of the male logit, ``w * t * (d - 0.5)``, and the unit images of ``split``."""
    unit = unit_images(df.loc[df["split"] == split, "path"])
    return W * (1 - unit.mean(-1) - 0.5) * BROWS, unit


@pytest.mark.parametrize("norm", ["minmax", "sum", "none", "max"])
def test_average_norm_is_the_mean_of_the_documented_normalization(reader_two_splits, norm):
    """--norm: the stored mean and std are numpy's over the maps normalized by hand. The
    women's maps are negative in the brows, so minmax (1 outside the brows for them), max,
    sum and none give four different means."""
    run, df = reader_two_splits
    argv = ["average", "--run", str(run), "--method", "cam", "--split", "all"]
    assert main([*argv, "--group", "all", "--norm", norm, "--no-preview", "--workers", "0"]) == 0
    out = np.load(run / "averages" / "cam_all_all.npz")
    maps, _ = expected_cam(df, "test")
    norm_maps = hand_norm(maps, norm)
    scale = np.abs(norm_maps).max()
    assert str(out["normalization"]) == norm and int(out["count"]) == len(maps) == 32
    np.testing.assert_allclose(out["mean"], norm_maps.mean(axis=0), atol=2e-6 * scale)
    np.testing.assert_allclose(out["std"], norm_maps.std(axis=0), atol=2e-6 * scale)
    if norm == "minmax":  # light brows (unflipped women): the map's max, 0, lies outside them
        test = df[df["split"] == "test"]
        light = ((test["label"] == "female") & ~test["flipped"].astype(bool)).to_numpy()
        np.testing.assert_allclose(out["mean"][~BROWS], light.mean(), atol=1e-9)


def test_average_maps_split_reads_the_other_splits_maps(reader_two_splits):
    """--maps-split val averages RUN/saliency/val/ (16 faces) into cam_val_all_all.npz; its
    mean map and mean face are those of the val faces, not of the test faces."""
    run, df = reader_two_splits
    argv = ["average", "--run", str(run), "--method", "cam", "--split", "all", "--group", "all"]
    assert main([*argv, "--maps-split", "val", "--norm", "max", "--no-preview",
                 "--workers", "0"]) == 0  # fmt: skip
    out = np.load(run / "averages" / "cam_val_all_all.npz")
    maps, unit = expected_cam(df, "val")
    test_maps, test_unit = expected_cam(df, "test")
    assert int(out["count"]) == len(maps) == 16
    expected = hand_norm(maps, "max").mean(axis=0)
    np.testing.assert_allclose(out["mean"], expected, atol=1e-6)
    np.testing.assert_allclose(out["mean_face"], unit.mean(axis=0), atol=1e-6)
    # the test split's answer is far from it: reading the wrong split would fail above
    assert np.abs(hand_norm(test_maps, "max").mean(axis=0) - expected).max() > 1e-2
    assert np.abs(test_unit.mean(axis=0) - unit.mean(axis=0)).max() > 1e-2


EXP_A = 7.8  # u = a * mean brightness: errors around 5%, none within 6e-4 of it
EXP_NET = f"""
import torch
from torch import nn


class Exp(nn.Module):
    def forward(self, x):
        return torch.exp(x)


def build():
    conv = nn.Conv2d(3, 1, 1, bias=False)  # a / 3 per channel: the mean over channels times a
    with torch.no_grad():
        conv.weight.fill_({EXP_A} / 3)
    return nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), Exp())
"""


def gauss_legendre_2_error(u: np.ndarray) -> np.ndarray:
    """IG's relative completeness error for ``z(alpha) = exp(alpha u)`` from the black image:
    the 2-point Gauss-Legendre rule (nodes 1/2 -+ 1/(2 sqrt 3), weights 1/2) gives
    ``u/2 (e^(u a1) + e^(u a2))`` against the exact ``e^u - 1``."""
    a1, a2 = 0.5 - 0.5 / np.sqrt(3), 0.5 + 0.5 / np.sqrt(3)
    exact = np.expm1(u)
    return np.abs(u / 2 * (np.exp(a1 * u) + np.exp(a2 * u)) - exact) / exact


def test_ig_tolerance_warns_exactly_above_it(tmp_path, brows_world, monkeypatch, capsys):
    """--ig-tolerance: with mean 0 and std 1 the input is the unit image, the black baseline
    is 0 and z = exp(u), u = a * mean(x); each face's error is gauss_legendre_2_error(u).
    The warning counts exactly the faces above the tolerance (default 5%), and a raised
    tolerance silences it; index.csv's error is that of the stored maps."""
    (tmp_path / "expnet_opt.py").write_text(textwrap.dedent(EXP_NET))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    assert main(["adopt", "--out", str(run), "--function", "expnet_opt:build", "--classes",
                 "female,male", "--size", str(BROWS_SIZE), "--mean", "0,0,0", "--std", "1,1,1",
                 "--manifest", str(brows_world / "manifest.csv")]) == 0  # fmt: skip
    paths = pd.read_csv(brows_world / "manifest.csv")["path"]
    u = EXP_A * unit_images([brows_world / p for p in paths]).mean(axis=(1, 2, 3))
    error = gauss_legendre_2_error(u)
    assert (error < 0.05).any() and (error > 0.05).any()  # the default 5% splits the faces
    assert np.abs(error - 0.05).min() > 2e-4  # and no face sits on the line
    argv = ["explain", "--run", str(run), "--methods", "ig", "--ig-steps", "2", "--workers", "0",
            "--ig-baseline", "black"]  # fmt: skip
    for extra, over in (([], (error > 0.05).sum()), (["--ig-tolerance", "0.1"], 0),
                        (["--ig-tolerance", "0.01"], len(error))):  # fmt: skip
        capsys.readouterr()  # --overwrite: the tolerance is part of explain's resume key
        assert main([*argv, *extra, "--overwrite"]) == 0
        warned = re.findall(r"warning: (\d+) image\(s\) have an IG completeness error above",
                            capsys.readouterr().out)  # fmt: skip
        assert warned == ([str(over)] if over else []), (extra, warned)
    maps, index, _ = read_maps(run / "saliency" / "test" / "ig")
    assert index["path"].tolist() == paths.tolist() and (index["target"] == "male").all()
    np.testing.assert_allclose(index["ig_delta"], np.expm1(u), rtol=1e-5)
    np.testing.assert_allclose(index["ig_error"], error, rtol=1e-3, atol=1e-6)
    total = np.asarray(maps).sum(axis=(1, 2), dtype=np.float64)
    np.testing.assert_allclose(
        np.abs(total - np.expm1(u)) / np.expm1(u), index["ig_error"], rtol=1e-3, atol=1e-6
    )


def shifted_onnxruntime(monkeypatch, shift: float) -> None:
    """onnxruntime's sessions return every output plus ``shift`` (a conversion or export
    that is off by exactly that much)."""
    import onnxruntime

    real = onnxruntime.InferenceSession

    class Shifted(real):
        def run(self, output_names, input_feed, run_options=None):
            return [o + np.float32(shift) for o in super().run(output_names, input_feed)]

    monkeypatch.setattr(onnxruntime, "InferenceSession", Shifted)


@pytest.mark.parametrize("shift", [2e-4, 5e-5])
def test_export_fails_in_one_line_when_the_logits_differ(
    brows_reader_run, tmp_path, monkeypatch, capsys, shift
):
    """export: onnxruntime's logits off by 2e-4 (> 1e-4) fail with exit 2 and one line
    naming the difference and the file not to use; off by 5e-5 pass. Both record the
    difference (the shift, up to the export's own ~1e-6) beside the file."""
    shifted_onnxruntime(monkeypatch, shift)
    out = tmp_path / "reader.onnx"
    code = main(["export", "--run", str(brows_reader_run), "--out", str(out)])
    said = capsys.readouterr()
    info = json.loads((tmp_path / "reader.onnx.preprocessing.json").read_text())
    assert info["check"]["max_abs_difference"] == pytest.approx(shift, abs=1e-5)
    assert info["check"]["tolerance"] == 1e-4
    if shift > 1e-4:
        assert code == 2 and said.out == ""
        lines = said.err.strip().splitlines()
        assert len(lines) == 1, said.err
        pattern = (
            r"^saliency export: error: the onnx export differs from PyTorch by (\S+) "
            r"\(tolerance 0.0001\) on .*; do not use (.+)$"
        )
        found = re.search(pattern, lines[0])
        assert found and float(found[1]) == pytest.approx(shift, abs=1e-5), lines[0]
        assert found[2] == str(out)
    else:
        assert code == 0 and said.err == ""
        found = re.search(r"max abs difference of the logits (\S+) \(< 0.0001\)", said.out)
        assert found and float(found[1]) == pytest.approx(shift, abs=1e-5), said.out


@pytest.mark.parametrize("shift", [3e-5, 0.05])
def test_adopt_records_onnxruntimes_difference_and_refuses_a_bad_conversion(
    tmp_path, monkeypatch, capsys, shift
):
    """adopt of an ONNX file: the recorded onnxruntime difference is the shift put into
    onnxruntime's outputs (up to the conversion's ~1e-7); 0.05 is above 1e-4 of the outputs
    (all under 1 here, checked) and is refused before any checkpoint is written."""
    import warnings

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(2, 2)).eval()  # fmt: skip
    path = tmp_path / "small.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(2, 3, 32, 32),), str(path), dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["out"],
                          dynamic_axes={"input": {0: "n"}, "out": {0: "n"}})  # fmt: skip
    with torch.no_grad():  # adopt checks on 8 seeded noise images: |outputs| < 1, scale 1
        assert net(torch.randn(64, 3, 32, 32) * 3).abs().max() < 1
    shifted_onnxruntime(monkeypatch, shift)
    run = tmp_path / "run"
    code = main(["adopt", "--out", str(run), "--weights", str(path), "--classes",
                 "female,male", "--size", "32"])  # fmt: skip
    said = capsys.readouterr()
    if shift > 1e-4:
        assert code == 2 and not best_checkpoint(run).exists()
        assert "differs from onnxruntime by 0.05;" in said.err
        return
    assert code == 0
    rec = json.loads((run / "model" / "adopted.json").read_text())
    assert rec["onnxruntime_max_abs_difference"] == pytest.approx(shift, abs=1e-6)
    ckpt_rec = load_model(best_checkpoint(run))[3].adoption
    assert ckpt_rec["onnxruntime_max_abs_difference"] == rec["onnxruntime_max_abs_difference"]
    found = re.search(r"onnx2torch vs onnxruntime: max abs difference (\S+)", said.out)
    assert found and float(found[1]) == pytest.approx(shift, rel=0.05)


SIGMOID_NET = """
import torch
from torch import nn


def build(seed=3):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(4, 1), nn.Sigmoid(),
    )
"""


def hand_input(world, paths) -> torch.Tensor:
    """ImageNet-normalized ``[N, 3, H, W]`` (adopt's default mean and std)."""
    x = (unit_images([world / p for p in paths]) - IMAGENET[0]) / IMAGENET[1]
    return torch.from_numpy(x).permute(0, 3, 1, 2).float()


def test_adopt_output_function_weights_and_rows_without_split(tmp_path, brows_world, monkeypatch):
    """One sigmoid output p = P(male). --function with --weights: the adopted model is the
    function's net with the file's weights (another seed's). --output probabilities: the
    probability is p and the logit log(p / (1 - p)); auto-detection (one column cannot sum
    to one) takes p for a logit, so its probability is sigmoid(p). A manifest with no split
    column: every row is evaluated as test, in manifest order."""
    (tmp_path / "signet_opt.py").write_text(textwrap.dedent(SIGMOID_NET))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    df = pd.read_csv(brows_world / "manifest.csv")
    df["path"] = [str(brows_world / p) for p in df["path"]]
    manifest = tmp_path / "nosplit.csv"
    df[["path", "label", "group"]].to_csv(manifest, index=False)  # no split column
    build = __import__("signet_opt").build
    torch.save(build(seed=11).state_dict(), tmp_path / "w.pt")
    x = hand_input(brows_world, pd.read_csv(brows_world / "manifest.csv")["path"])
    with torch.no_grad():
        p = build(seed=11).eval()(x)[:, 0].double().numpy()
        p_init = build().eval()(x)[:, 0].double().numpy()
    assert np.abs(p - p_init).max() > 1e-2  # the file's weights are not the function's own
    predictions = {}
    for output in ("probabilities", "auto"):
        run = tmp_path / output
        argv = ["adopt", "--out", str(run), "--function", "signet_opt:build", "--weights"]
        argv += [str(tmp_path / "w.pt"), "--classes", "female,male", "--size", str(BROWS_SIZE)]
        assert main([*argv, "--output", output, "--manifest", str(manifest)]) == 0
        rec = json.loads((run / "model" / "adopted.json").read_text())
        assert rec["output"] == ("logits" if output == "auto" else output)
        assert rec["output_how"] == ("detected" if output == "auto" else "given")
        assert main(["evaluate", "--run", str(run), "--workers", "0"]) == 0
        predictions[output] = pd.read_csv(run / "eval" / "test" / "predictions.csv")
    given, auto = predictions["probabilities"], predictions["auto"]
    for pred in (given, auto):  # rows without a split count as test: all 48, in order
        paths = [os.path.normpath(tmp_path / p) for p in pred["path"]]  # relative to it
        assert paths == df["path"].tolist() and (pred["split"] == "test").all()
    np.testing.assert_allclose(given["prob_male"], p, atol=1e-5)
    np.testing.assert_allclose(given["logit"], np.log(p / (1 - p)), atol=1e-4)
    np.testing.assert_allclose(auto["prob_male"], 1 / (1 + np.exp(-p)), atol=1e-5)
    clear = np.abs(p - 0.5) > 1e-4
    np.testing.assert_array_equal(given["pred"][clear], np.where(p > 0.5, "male", "female")[clear])
    assert main(["evaluate", "--run", str(tmp_path / "auto"), "--split", "val", "--workers",
                 "0"]) == 2  # no row is val  # fmt: skip


TWO_BLOCKS = """
import torch
from torch import nn


class TwoBlocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.relu1 = nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU()
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        a = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc(a.mean(dim=(2, 3)))


def build(seed=3):
    torch.manual_seed(seed)
    return TwoBlocks()
"""


def test_adopt_target_layer_moves_grad_cam_to_that_layer(tmp_path, brows_world, monkeypatch):
    """--target-layer relu1: the cut is at the first block (32x32 at 64 px, 4 channels), not
    the default last one (relu2, 16x16); the model keeps the logits of the function's net
    with --weights loaded, and Grad-CAM is the hand computation at relu1:
    sum_c mean_hw(dS/dA_c) A_c with A = relu1(conv1(x))."""
    from saliency.methods.gradcam import grad_cam_grid

    (tmp_path / "twoblocks_opt.py").write_text(textwrap.dedent(TWO_BLOCKS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    net = __import__("twoblocks_opt").build(seed=7).eval()
    torch.save(net.state_dict(), tmp_path / "w.pt")
    common = ["--function", "twoblocks_opt:build", "--weights", str(tmp_path / "w.pt"),
              "--classes", "female,male", "--size", str(BROWS_SIZE),
              "--manifest", str(brows_world / "manifest.csv")]  # fmt: skip
    assert main(["adopt", "--out", str(tmp_path / "default"), *common]) == 0
    assert main(["adopt", "--out", str(tmp_path / "run"), *common, "--target-layer", "relu1"]) == 0
    default = json.loads((tmp_path / "default" / "model" / "adopted.json").read_text())
    rec = json.loads((tmp_path / "run" / "model" / "adopted.json").read_text())
    assert (default["layer"], default["grid"], default["channels"]) == ("relu2", [16, 16], 6)
    assert (rec["layer"], rec["grid"], rec["channels"]) == ("relu1", [32, 32], 4)
    assert rec["target_layer"] == "relu1" and not rec["cam_ready"]
    model = load_model(best_checkpoint(tmp_path / "run"))[0]
    x = hand_input(brows_world, pd.read_csv(brows_world / "manifest.csv")["path"][:6])
    target = torch.tensor([0, 1, 1, 0, 1, 0])
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=1e-5, atol=1e-6)
    a = net.relu1(net.conv1(x)).detach().requires_grad_(True)
    score = net.fc(net.relu2(net.conv2(a)).mean(dim=(2, 3))).gather(1, target[:, None]).sum()
    (g,) = torch.autograd.grad(score, a)
    by_hand = (g.mean(dim=(2, 3))[:, :, None, None] * a.detach()).sum(dim=1)
    torch.testing.assert_close(grad_cam_grid(model, x, target), by_hand, rtol=1e-4, atol=1e-7)
    argv = ["explain", "--run", str(tmp_path / "run"), "--methods", "gradcam", "--limit", "2"]
    assert main([*argv, "--workers", "0"]) == 0
    assert json.loads((tmp_path / "run/saliency/test/gradcam/meta.json").read_text())["grid"] == [
        32, 32,
    ]  # fmt: skip
