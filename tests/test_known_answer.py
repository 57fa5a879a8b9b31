"""The whole analysis chain on a hand-weighted model whose answer is known exactly.

The region reader (saliency.models.reader) scores ``w * mean(t * (d - d0))`` with the brows'
mask as ``t`` and the pixel darkness ``d``, so its evidence lies in the brows and nowhere
else. Every expected value below comes from the images and that formula, never from the
code under test: explain's maps, average's selections (correct and incorrect, on a cell that
has both), the contrast's difference map, ablation's per-region effects and the share of
attribution, through the same commands a user runs. Nothing is trained, so nothing depends
on the CPU's arithmetic beyond float32 rounding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import BROWS_SIZE, brows_world_labels

from saliency.cli import main
from saliency.data.imageio import read_rgb
from saliency.data.regions import REGION_CODES, REGIONS
from saliency.methods.store import read_maps

W, D0 = 400.0, 0.5
BROWS = brows_world_labels() == REGION_CODES["brows"]


def darkness(world, paths) -> np.ndarray:
    """``1 - gray`` of each stored image ``[N, H, W]`` (the stored size is the model's)."""
    return np.stack([1 - read_rgb(world / p).astype(np.float64).mean(-1) / 255 for p in paths])


def expected_logits(world, paths) -> np.ndarray:
    return W * ((darkness(world, paths) - D0) * BROWS).mean(axis=(1, 2))


def expected_cam(world, paths) -> np.ndarray:
    """CAM for the male logit: ``w * t * (d - d0)`` per pixel."""
    return W * (darkness(world, paths) - D0) * BROWS


@pytest.fixture(scope="module")
def explained(brows_reader_run):
    argv = ["explain", "--run", str(brows_reader_run), "--workers", "0"]
    assert main([*argv, "--methods", "cam,gradcam,ig", "--ig-baseline", "blur"]) == 0
    assert main(["evaluate", "--run", str(brows_reader_run), "--workers", "0"]) == 0
    assert main(["ablate", "--run", str(brows_reader_run), "--workers", "0"]) == 0
    return brows_reader_run


def test_logits_and_predictions_are_the_formulas(explained, brows_world):
    _, index, _ = read_maps(explained / "saliency" / "test" / "cam")
    expected = expected_logits(brows_world, index["path"])
    np.testing.assert_allclose(index["logit"], expected, atol=1e-4)
    manifest = pd.read_csv(brows_world / "manifest.csv").set_index("path")
    flipped = manifest.loc[index["path"], "flipped"].to_numpy()
    # the flipped women of B_F have male brows: exactly they are misclassified
    np.testing.assert_array_equal(~index["correct"].to_numpy(bool), flipped)
    assert flipped.sum() == 4


def test_cam_gradcam_and_ig_put_everything_in_the_brows(explained, brows_world):
    cam, index, meta = read_maps(explained / "saliency" / "test" / "cam")
    sign = np.where(index["target"] == "male", 1.0, -1.0)[:, None, None]
    expected = expected_cam(brows_world, index["path"]) * sign
    assert meta["grid"] == [BROWS_SIZE, BROWS_SIZE]
    np.testing.assert_allclose(cam, expected, atol=1e-4)
    gradcam, _, _ = read_maps(explained / "saliency" / "test" / "gradcam")
    # Grad-CAM's channel weight is dlogit/dA = w / (H W) at every cell: CAM / (H W)
    np.testing.assert_allclose(np.asarray(gradcam) * BROWS_SIZE**2, expected, atol=1e-4)
    ig, ig_index, _ = read_maps(explained / "saliency" / "test" / "ig")
    assert (np.asarray(ig)[:, ~BROWS] == 0).all()  # exactly: zero gradient outside the brows
    assert (np.abs(np.asarray(ig)[:, BROWS]).sum(axis=1) > 0).all()
    assert ig_index["ig_error"].max() < 1e-4  # the model is linear: IG is exact


def test_average_selects_correct_and_incorrect_on_a_cell_that_has_both(explained, brows_world):
    cam, index, _ = read_maps(explained / "saliency" / "test" / "cam")
    manifest = pd.read_csv(brows_world / "manifest.csv").set_index("path")
    flipped = manifest.loc[index["path"], "flipped"].to_numpy()
    cell = ((index["group"] == "B") & (index["label"] == "female")).to_numpy()
    run = str(explained)
    for split, rows in (("incorrect", cell & flipped), ("correct", cell & ~flipped)):
        argv = ["average", "--run", run, "--method", "cam", "--split", split, "--group", "B_F"]
        assert main([*argv, "--norm", "max", "--workers", "0"]) == 0
        out = np.load(explained / "averages" / f"cam_{split}_B_F.npz")
        maps = np.asarray(cam)[rows].astype(np.float64)
        norm = maps / np.abs(maps).max(axis=(1, 2), keepdims=True)
        assert int(out["count"]) == rows.sum() == (4 if split == "incorrect" else 8)
        np.testing.assert_allclose(out["mean"], norm.mean(axis=0), atol=1e-6)
        faces = np.stack([read_rgb(brows_world / p) for p in index["path"][rows]]) / 255
        np.testing.assert_allclose(out["mean_face"], faces.mean(axis=0), atol=1e-6)
    # the flipped women are predicted male: their map for the predicted class is positive
    incorrect = np.load(explained / "averages" / "cam_incorrect_B_F.npz")["mean"]
    assert incorrect[BROWS].min() > 0 and (incorrect[~BROWS] == 0).all()


def test_contrast_difference_is_the_difference_of_means_and_centred(explained):
    cam, index, _ = read_maps(explained / "saliency" / "test" / "cam")
    argv = ["average", "--run", str(explained), "--method", "cam", "--split", "incorrect"]
    argv += ["--group", "B_F", "--contrast", "correct", "--permutations", "200", "--workers", "0"]
    assert main(argv) == 0
    out = np.load(explained / "averages" / "cam_incorrect_B_F_vs_correct.npz")
    ok = index["correct"].to_numpy(bool)
    cell = ((index["group"] == "B") & (index["label"] == "female")).to_numpy()
    maps = np.asarray(cam).astype(np.float64)
    norm = maps / np.abs(maps).max(axis=(1, 2), keepdims=True)
    expected = norm[cell & ~ok].mean(0) - norm[cell & ok].mean(0)
    np.testing.assert_allclose(out["difference"], expected, atol=1e-6)
    assert (out["difference"][~BROWS] == 0).all()  # no difference where both maps are zero
    # both sides' maps (each for its predicted class) are positive in the brows and zero
    # elsewhere: no pixel outside the brows can differ, and t is exactly 0 there
    assert not (out["p_fwe"] < 0.05)[~BROWS].any() and (out["t"][~BROWS] == 0).all()
    assert ((out["p_fwe"] > 0) & (out["p_fwe"] <= 1)).all()


def test_an_empty_selection_says_so_and_writes_nothing(explained):
    """Group A has no flipped face, so the reader gets all of A right: ``--split incorrect``
    on A is empty by the data (``--split correct`` on A is not), and average says so."""
    run, before = str(explained), set((explained / "averages").glob("*"))
    argv = ["average", "--run", run, "--method", "cam", "--group", "A", "--workers", "0"]
    assert main([*argv, "--split", "incorrect"]) == 1
    assert set((explained / "averages").glob("*")) == before
    assert main([*argv, "--split", "correct"]) == 0
    out = np.load(explained / "averages" / "cam_correct_A.npz")
    assert int(out["count"]) == 24  # every face of A


def test_contrast_with_the_rest_is_the_complement_within_the_split(explained, brows_world):
    """B_F's correct faces against every other correct face; the maps are the reader's
    formula for the predicted class, max-normalized by hand."""
    cam, index, _ = read_maps(explained / "saliency" / "test" / "cam")
    argv = ["average", "--run", str(explained), "--method", "cam", "--split", "correct"]
    argv += ["--group", "B_F", "--contrast", "rest", "--permutations", "20", "--workers", "0"]
    assert main(argv) == 0
    out = np.load(explained / "averages" / "cam_correct_B_F_vs_rest.npz")
    manifest = pd.read_csv(brows_world / "manifest.csv").set_index("path")
    flipped = manifest.loc[index["path"], "flipped"].to_numpy()
    cell = ((index["group"] == "B") & (index["label"] == "female")).to_numpy()
    a, b = cell & ~flipped, ~cell  # the unflipped B_F women; everyone else is correct
    assert int(out["count"]) == a.sum() == 8 and int(out["contrast_count"]) == b.sum() == 36
    male = manifest.loc[index["path"], "label"].eq("male").to_numpy() | flipped  # predicted
    maps = expected_cam(brows_world, index["path"]) * np.where(male, 1.0, -1.0)[:, None, None]
    norm = maps / np.abs(maps).max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out["difference"], norm[a].mean(0) - norm[b].mean(0), atol=1e-5)
    assert "rest" in str(out["contrast"])


def test_only_deleting_the_brows_changes_the_output(explained):
    for region in REGIONS:
        per = pd.read_csv(explained / "ablation" / f"{region}_blur_delete" / "per_image.csv")
        assert len(per) == 48
        if region == "brows":  # blurred toward the skin: both classes lose confidence
            assert (per["prob_after"] < per["prob_before"]).sum() >= 44
        else:  # features are protected from other regions' fills; the reader sees nothing
            np.testing.assert_array_equal(per["score_after"], per["score_before"])
    ranking = pd.read_csv(explained / "ablation" / "ranking_blur_delete.csv")
    top = ranking[ranking["selection"] == "all"].iloc[0]
    assert top["region"] == "brows" and bool(top["excludes_zero"])


@pytest.mark.parametrize("method", ["cam", "gradcam", "ig"])
def test_share_gives_the_brows_all_positive_attribution_and_both_leaders(explained, method):
    argv = ["share", "--run", str(explained), "--method", method, "--split", "all"]
    assert main([*argv, "--group", "all", "--bootstrap", "200", "--workers", "0"]) == 0
    folder = explained / "share" / f"{method}_test"
    summary = pd.read_csv(folder / "summary.csv").set_index("region")
    assert summary.loc["brows", "share"] == pytest.approx(1.0, abs=1e-9)
    assert summary.drop("brows")["share"].abs().max() < 1e-9
    # summary.csv keeps 5 significant digits
    assert summary.loc["brows", "area"] == pytest.approx(BROWS.mean(), rel=1e-4)
    assert summary.loc["brows", "enrichment"] == pytest.approx(1 / BROWS.mean(), rel=1e-4)
    skipped = pd.read_csv(folder / "skipped.csv")
    assert len(skipped) == 0  # the blur baseline gives every image positive IG mass
    # the agreement stage, after share and ablate (test above): both answers name the brows
    assert main(["agreement", "--run", str(explained), "--method", method, "--group", "all",
                 "--bootstrap", "200"]) == 0  # fmt: skip
    agreement = pd.read_csv(explained / "agreement" / f"{method}_test.csv", keep_default_na=False)
    row = agreement[agreement["split"] == "all"].iloc[0]
    assert row["selection"] == "all" and row["fill"] == "blur" and row["n"] == 48
    # no null model yet: both leaders are the brows, and no verdict is claimed (issue 19;
    # test_validate.py gives the reader a null and recovers the brows)
    assert row["ablation_leader"] == row["share_leader"] == "brows", row.to_dict()
    assert row["recovered"] == "" and row["judged"] == "no null model", row.to_dict()


def test_a_model_at_chance_is_warned_about_by_every_command(brows_world, tmp_path, capsys):
    import torch

    from saliency.models.checkpoint import save_checkpoint
    from saliency.models.preprocess import Preprocessing
    from saliency.models.reader_run import reader_checkpoint

    run = tmp_path / "blind"  # weight 0: the logit is 0 for every face
    ckpt = reader_checkpoint(
        brows_world / "manifest.csv", torch.from_numpy(BROWS).float(),
        Preprocessing(size=BROWS_SIZE), weight=0.0,
    )  # fmt: skip
    save_checkpoint(run / "checkpoints" / "best.pt", ckpt)
    r = ["--run", str(run), "--workers", "0"]
    assert main(["evaluate", *r]) == 0
    out = capsys.readouterr().out
    assert out.count("warning: the model is at chance on test") == 1
    assert "includes the majority class's 50.0%" in out
    commands = [
        ["explain", *r, "--methods", "cam"],
        ["average", *r, "--method", "cam", "--group", "all"],
        ["share", *r, "--method", "cam", "--split", "all", "--group", "all", "--bootstrap", "50"],
        ["ablate", *r, "--region", "eyes"],
    ]
    for argv in commands:  # each succeeds on a blind model, and warns first
        assert main(argv) == 0, argv[0]
        out = capsys.readouterr().out
        assert out.startswith("warning: the model is at chance on test"), argv[0]
    # weight 0: every map is 0, so share skips all 48 images (no positive mass), and deleting
    # the eyes leaves every probability at exactly 0.5
    assert len(pd.read_csv(run / "share" / "cam_test" / "skipped.csv")) == 48
    per = pd.read_csv(run / "ablation" / "eyes_blur_delete" / "per_image.csv")
    assert len(per) == 48 and (per["prob_before"] == 0.5).all() and (per["prob_after"] == 0.5).all()


def test_a_model_above_chance_is_not_warned_about(explained, capsys):
    assert main(["evaluate", "--run", str(explained), "--workers", "0"]) == 0
    assert "at chance" not in capsys.readouterr().out
