"""``saliency regions``: source choice, masks in image coordinates, skips with reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from saliency.cli import main
from saliency.data.imageio import read_label_map
from saliency.data.manifest import read_manifest


def regions(*argv: str) -> int:
    return main(["regions", *argv])


def test_synthetic_masks_are_taken_as_they_are(synth_small, tmp_path):
    assert regions("--manifest", str(synth_small / "manifest.csv"), "--out", str(tmp_path)) == 0
    out, src = read_manifest(tmp_path / "manifest.csv"), read_manifest(synth_small / "manifest.csv")
    assert len(out) == len(src) and set(out.df["mask_source"]) == {"synthetic"}
    for a, b in zip(out.df["mask"][:5], src.df["mask"][:5], strict=True):
        np.testing.assert_array_equal(
            read_label_map(out.abspath(a)), read_label_map(src.abspath(b))
        )
    assert out.abspath(out.df["path"][0]).resolve() == src.abspath(src.df["path"][0]).resolve()
    assert (tmp_path / "regions_preview.png").stat().st_size > 10_000


def test_landmark_source_skips_rows_without_landmarks(synth_small, tmp_path):
    df = pd.read_csv(synth_small / "manifest.csv").head(6)
    df["path"] = [str(synth_small / p) for p in df["path"]]
    df = df.drop(columns=["mask"])
    df.loc[2, "x10"] = np.nan  # one row lost a landmark
    df.to_csv(tmp_path / "m.csv", index=False)
    argv = ("--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"), "--preview", "0")
    assert regions(*argv) == 0  # auto: no masks, no parser -> landmarks
    out = read_manifest(tmp_path / "o" / "manifest.csv")
    skipped = pd.read_csv(tmp_path / "o" / "skipped.csv")
    assert len(out) + len(skipped) == 6 and list(skipped["reason"]) == ["no landmarks in this row"]
    labels = read_label_map(out.abspath(out.df["mask"][0]))
    assert labels.shape == (64, 64) and set(np.unique(labels)) <= set(range(7))
    assert {2, 3, 4, 5} <= set(np.unique(labels))  # brows, eyes, nose and mouth are there


def test_a_source_that_is_not_there_says_what_it_needs(synth_small, tmp_path, capsys):
    df = pd.read_csv(synth_small / "manifest.csv").head(2)[["path", "label"]]
    df["path"] = [str(synth_small / p) for p in df["path"]]
    df.to_csv(tmp_path / "m.csv", index=False)
    assert regions("--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o")) == 2
    assert "no region source" in capsys.readouterr().err
    argv = ("--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"))
    assert regions(*argv, "--source", "landmarks") == 2
    assert "68 landmark columns" in capsys.readouterr().err
    assert regions(*argv, "--source", "parsing", "--parser-weights", str(tmp_path / "no.pth")) == 2
    assert "79999_iter.pth" in capsys.readouterr().err


def test_parser_source_runs_the_given_checkpoint(synth_small, tmp_path):
    from saliency.faces.bisenet import BiSeNet

    torch.manual_seed(0)
    torch.save(BiSeNet().state_dict(), tmp_path / "parser.pth")  # random weights, right layout
    df = pd.read_csv(synth_small / "manifest.csv").head(3)[["path", "label", "group"]]
    df["path"] = [str(synth_small / p) for p in df["path"]]
    df.to_csv(tmp_path / "m.csv", index=False)
    argv = ["--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"),
            "--parser-weights", str(tmp_path / "parser.pth"), "--preview", "0"]  # fmt: skip
    assert regions(*argv) == 0
    out = read_manifest(tmp_path / "o" / "manifest.csv")
    assert len(out) == 3 and set(out.df["mask_source"]) == {"parsing"}
    assert read_label_map(out.abspath(out.df["mask"][0])).shape == (64, 64)


@pytest.mark.parametrize("source", ["synthetic", "nearest"])
def test_forced_sources_are_checked(synth_small, tmp_path, source, capsys):
    argv = ["--manifest", str(synth_small / "manifest.csv"), "--out", str(tmp_path)]
    if source == "nearest":
        with pytest.raises(SystemExit):  # argparse rejects it, listing the choices
            regions(*argv, "--source", source)
        assert "auto" in capsys.readouterr().err
    else:
        assert regions(*argv, "--source", source, "--preview", "0") == 0
        out = read_manifest(tmp_path / "manifest.csv")
        assert set(out.df["mask_source"]) == {"synthetic"}
        assert not (tmp_path / "regions_preview.png").exists()  # --preview 0 writes none
