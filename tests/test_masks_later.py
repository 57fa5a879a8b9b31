"""Region masks made after the model: ``--manifest`` for explain, share and ablate, matched
to the run's images by path, on the hand-weighted brows reader (its answer is known)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from conftest import BROWS_SIZE, brows_world_labels

from saliency.cli import main
from saliency.data.manifest import read_manifest, write_manifest
from saliency.data.regions import REGION_CODES
from saliency.models.checkpoint import save_checkpoint
from saliency.models.preprocess import Preprocessing
from saliency.models.reader_run import reader_checkpoint


@pytest.fixture(scope="module")
def maskless_run(tmp_path_factory, brows_world):
    """The brows reader over a manifest of the same images without a mask column."""
    m = read_manifest(brows_world / "manifest.csv")
    df = m.df.drop(columns=["mask"])
    df["path"] = [str(m.abspath(p)) for p in df["path"]]
    manifest = write_manifest(df, tmp_path_factory.mktemp("maskless") / "manifest.csv")
    template = torch.from_numpy(brows_world_labels() == REGION_CODES["brows"]).float()
    ckpt = reader_checkpoint(manifest, template, Preprocessing(size=BROWS_SIZE), weight=400.0)
    run = tmp_path_factory.mktemp("runs") / "maskless"
    save_checkpoint(run / "checkpoints" / "best.pt", ckpt)
    return run


def test_ablate_takes_the_masks_from_another_manifest(maskless_run, brows_world, capsys):
    run = str(maskless_run)
    assert main(["ablate", "--run", run, "--region", "brows", "--workers", "0"]) == 2
    assert "pass the manifest it writes with --manifest" in capsys.readouterr().err
    argv = [
        "ablate",
        "--run",
        run,
        "--workers",
        "0",
        "--manifest",
        str(brows_world / "manifest.csv"),
    ]
    for region in ("brows", "mouth"):
        assert main([*argv, "--region", region]) == 0
    brows = pd.read_csv(maskless_run / "ablation/brows_blur_delete/per_image.csv")
    mouth = pd.read_csv(maskless_run / "ablation/mouth_blur_delete/per_image.csv")
    assert len(brows) == len(mouth) == 48
    assert (brows["prob_after"] < brows["prob_before"]).sum() >= 44  # the reader reads brows
    pd.testing.assert_series_equal(mouth["score_after"], mouth["score_before"], check_names=False)


def test_explain_records_the_masks_and_share_uses_them(maskless_run, brows_world):
    run = str(maskless_run)
    masks = str(brows_world / "manifest.csv")
    assert main(["explain", "--run", run, "--methods", "cam", "--workers", "0",
                 "--manifest", masks]) == 0  # fmt: skip
    assert main(["share", "--run", run, "--split", "all", "--group", "all",
                 "--bootstrap", "100", "--workers", "0"]) == 0  # fmt: skip
    summary = pd.read_csv(maskless_run / "share/cam_test/summary.csv").set_index("region")
    assert summary.loc["brows", "share"] == pytest.approx(1.0, abs=1e-9)


def test_a_manifest_that_lacks_some_images_is_one_clear_error(
    maskless_run, brows_world, tmp_path, capsys
):
    m = read_manifest(brows_world / "manifest.csv")
    df = m.df.iloc[1:].copy()
    df["path"] = [str(m.abspath(p)) for p in df["path"]]
    df["mask"] = [str(m.abspath(p)) for p in df["mask"]]
    partial = write_manifest(df, tmp_path / "partial.csv")
    argv = ["ablate", "--run", str(maskless_run), "--region", "brows", "--workers", "0"]
    assert main([*argv, "--manifest", str(partial)]) == 2
    err = capsys.readouterr().err
    assert "1 of the 48 images are not in" in err and "000.png" in err
