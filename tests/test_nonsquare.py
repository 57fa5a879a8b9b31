"""Non-square inputs (``--size 218x178``, height first: CelebA's native crop) end to end.

First a hand-weighted region reader of the brows on a 218 x 178 layout, where every number
has an exact answer from the images and the formula (as in test_known_answer.py): the logits,
CAM and Grad-CAM pixel by pixel, the brows' share of attribution and their area, and an
ablation in which only the brows change the output. A mask stretched or transposed on its
way to the input would move the brows off the reader's template and fail each of them.
Then a ResNet-18 trained for one epoch at 218 x 178 on synthetic faces drawn at that size:
train, explain, average, ablate and export, and the exported model adopted back.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import brows_face, brows_world_labels

from saliency.cli import main
from saliency.data.imageio import read_rgb, write_rgb
from saliency.data.regions import REGION_CODES, REGIONS
from saliency.methods.store import read_maps

H, W = 218, 178
WEIGHT, D0 = 400.0, 0.5


def layout() -> np.ndarray:
    """The brows world's 64 px layout stretched to 218 x 178 (nearest: codes stay codes)."""
    return cv2.resize(brows_world_labels(), (W, H), interpolation=cv2.INTER_NEAREST)


BROWS = layout() == REGION_CODES["brows"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """24 faces on the layout, class only in the brows' darkness (male dark), all test."""
    from saliency.data.manifest import write_manifest

    out = tmp_path_factory.mktemp("nonsquare_world")
    lab = layout()
    write_rgb(out / "mask.png", lab)
    (out / "images").mkdir()
    rng = np.random.default_rng(3)
    rows = []
    for i in range(24):
        label = ("female", "male")[i % 2]
        path = f"images/{i:03d}.png"
        write_rgb(out / path, brows_face(lab, label == "male", rng))
        rows.append({"path": path, "label": label, "group": "AB"[(i // 2) % 2],
                     "split": "test", "mask": "mask.png"})  # fmt: skip
    write_manifest(pd.DataFrame(rows), out / "manifest.csv")
    return out


@pytest.fixture(scope="module")
def reader_run(tmp_path_factory, world):
    import torch

    from saliency.models.checkpoint import save_checkpoint
    from saliency.models.preprocess import Preprocessing
    from saliency.models.reader_run import reader_checkpoint

    run = tmp_path_factory.mktemp("runs") / "reader_218x178"
    pre = Preprocessing(size=(H, W))
    template = torch.from_numpy(BROWS).float()
    save_checkpoint(run / "checkpoints" / "best.pt",
                    reader_checkpoint(world / "manifest.csv", template, pre, WEIGHT))  # fmt: skip
    r = ["--run", str(run), "--workers", "0"]
    assert main(["explain", *r, "--methods", "cam,gradcam,ig", "--ig-baseline", "blur"]) == 0
    assert main(["ablate", *r]) == 0
    return run


def _darkness(world, paths) -> np.ndarray:
    return np.stack([1 - read_rgb(world / p).astype(np.float64).mean(-1) / 255 for p in paths])


def test_the_reader_gives_the_exact_answer_at_218x178(reader_run, world):
    cam, index, meta = read_maps(reader_run / "saliency" / "test" / "cam")
    assert cam.shape == (24, H, W) and meta["grid"] == [H, W]
    d = _darkness(world, index["path"])
    logits = WEIGHT * ((d - D0) * BROWS).mean(axis=(1, 2))
    np.testing.assert_allclose(index["logit"], logits, atol=1e-4)
    assert index["correct"].all()  # dark brows are male
    sign = np.where(index["target"] == "male", 1.0, -1.0)[:, None, None]
    expected = WEIGHT * (d - D0) * BROWS * sign
    np.testing.assert_allclose(cam, expected, atol=1e-4)
    gradcam, _, _ = read_maps(reader_run / "saliency" / "test" / "gradcam")
    np.testing.assert_allclose(np.asarray(gradcam) * H * W, expected, atol=1e-4)
    ig, _, _ = read_maps(reader_run / "saliency" / "test" / "ig")
    assert (np.asarray(ig)[:, ~BROWS] == 0).all()


def test_masks_meet_the_input_where_the_reader_reads(reader_run):
    for region in REGIONS:
        per = pd.read_csv(reader_run / "ablation" / f"{region}_blur_delete" / "per_image.csv")
        assert len(per) == 24
        if region == "brows":
            assert (per["score_after"] != per["score_before"]).all()
        else:  # no other region's fill reaches the brows: the reader sees nothing
            np.testing.assert_array_equal(per["score_after"], per["score_before"])
    argv = ["share", "--run", str(reader_run), "--method", "cam", "--split", "all"]
    assert main([*argv, "--group", "all", "--bootstrap", "50", "--workers", "0"]) == 0
    summary = pd.read_csv(reader_run / "share" / "cam_test" / "summary.csv").set_index("region")
    assert summary.loc["brows", "share"] == pytest.approx(1.0, abs=1e-9)
    assert summary.loc["brows", "area"] == pytest.approx(BROWS.mean(), rel=1e-4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from saliency.data.synth.config import SynthConfig
    from saliency.data.synth.generate import generate

    root = tmp_path_factory.mktemp("nonsquare_trained")
    generate(SynthConfig(n=40, size=(H, W), seed=2, cues={"brows": 1.0}), root / "data",
             workers=0)  # fmt: skip
    run = root / "run"
    argv = ["train", "--manifest", str(root / "data" / "manifest.csv"), "--out", str(run),
            "--size", f"{H}x{W}", "--epochs", "1", "--batch-size", "16", "--workers", "0",
            "--device", "cpu", "--output-stride", "32"]  # fmt: skip
    assert main(argv) == 0
    return root, run


def test_a_218x178_run_trains_explains_averages_ablates_and_exports(trained, tmp_path):
    root, run = trained
    r = ["--run", str(run), "--workers", "0"]
    config = json.loads((run / "config.json").read_text())
    assert config["commands"]["train"]["config"]["size"] == [H, W]
    image = read_rgb(root / "data" / "images" / "000000.png")
    assert image.shape == (H, W, 3)  # drawn at the size, not stretched to it
    assert main(["explain", *r, "--methods", "cam,gradcam"]) == 0
    cam, index, meta = read_maps(run / "saliency" / "test" / "cam")
    assert cam.shape[1:] == (H, W)
    gh, gw = meta["grid"]
    assert (gh, gw) == (7, 6)  # stride 32: ceil(218 / 32) x ceil(178 / 32)
    # on a GAP -> FC net, Grad-CAM's weights are the FC row over the grid's cell count
    gradcam, _, _ = read_maps(run / "saliency" / "test" / "gradcam")
    scale = np.abs(cam).max()
    np.testing.assert_allclose(np.asarray(gradcam) * gh * gw, cam, atol=1e-5 * scale)
    assert main(["average", *r, "--method", "cam", "--split", "all"]) == 0
    avg = np.load(run / "averages" / "cam_all_all.npz")
    assert avg["mean"].shape == (H, W) and avg["mean_face"].shape == (H, W, 3)
    assert main(["ablate", *r, "--region", "eyes"]) == 0
    per = pd.read_csv(run / "ablation" / "eyes_blur_delete" / "per_image.csv")
    assert len(per) == len(index) and per["score_after"].notna().all()
    out = tmp_path / "model.onnx"
    assert main(["export", "--run", str(run), "--out", str(out)]) == 0
    side = json.loads(out.with_name("model.onnx.preprocessing.json").read_text())
    assert side["preprocessing"]["size"] == [H, W]
    adopted = tmp_path / "adopted"
    assert main(["adopt", "--weights", str(out), "--out", str(adopted)]) == 0
    assert json.loads((adopted / "model" / "adopted.json").read_text())["size"] == [H, W]


def test_augmented_rotation_is_a_rotation_in_pixels_on_a_non_square_image():
    """A square's second moments are isotropic at every angle: after a true rotation its
    covariance stays (s^2 / 12) I and its area s^2. Rotating in the sampling grid's -1..1
    coordinates instead (the same matrix for a 60 x 120 image) shears it."""
    import torch

    from saliency.models.augment import augment
    from saliency.models.recipe import Augmentation

    h, w, side = 60, 120, 24
    ys, xs = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2,
                            indexing="ij")  # fmt: skip
    square = ((ys.abs() < side / 2) & (xs.abs() < side / 2)).double()  # side x side px
    aug = Augmentation(hflip=0, rotation_deg=40, brightness=0, contrast=0)
    out = augment(square.expand(8, 3, h, w).clone(), aug, torch.Generator().manual_seed(0))
    angles = []
    for m in out[:, 0]:
        mass = m.sum()
        cy, cx = (m * ys).sum() / mass, (m * xs).sum() / mass
        vy, vx = (m * (ys - cy) ** 2).sum() / mass, (m * (xs - cx) ** 2).sum() / mass
        cov = (m * (ys - cy) * (xs - cx)).sum() / mass
        assert float(mass) == pytest.approx(side**2, rel=0.01)
        assert float(vy) == pytest.approx(side**2 / 12, rel=0.03)
        assert float(vx) == pytest.approx(side**2 / 12, rel=0.03)
        assert abs(float(cov)) < 0.03 * side**2 / 12
        # the corner farthest right gives the angle: the shape did turn
        corner = torch.nonzero(m > 0.5)[:, 1].max() - (w - 1) / 2
        angles.append(float(corner))
    assert max(angles) > side / 2 + 3  # some images turned by well over 10 degrees
