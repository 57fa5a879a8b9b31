"""``saliency regions``: source choice, masks in image coordinates, skips with reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from saliency.cli import main
from saliency.data.imageio import read_label_map, read_rgb
from saliency.data.manifest import read_manifest
from saliency.data.regions import CODE_NAMES, REGION_CODES


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
    _check_preview(tmp_path / "regions_preview.png", out)


# the preview's overlay colors (saliency.viz.regions): 45% of the face's pixel, 55% of these
OVERLAY = {"skin": (0, 200, 210), "brows": (230, 30, 30), "eyes": (30, 90, 255),
           "nose": (20, 200, 60), "mouth": (240, 30, 200), "hair": (255, 230, 0)}  # fmt: skip


def _tiles(sheet: np.ndarray) -> list[tuple[slice, slice]]:
    """The picture tiles of a contact sheet on white: connected non-white areas of at least
    60 x 60 px (captions and legend swatches are smaller), row by row, left to right."""
    from scipy import ndimage

    parts, _ = ndimage.label((sheet < 245).any(axis=2))
    boxes = [b for b in ndimage.find_objects(parts) if min(s.stop - s.start for s in b) >= 60]
    return sorted(boxes, key=lambda b: (b[0].start // 20, b[1].start))


def _sample(sheet: np.ndarray, tile: tuple[slice, slice], h: int, w: int) -> np.ndarray:
    """The tile's pixels at the centres of an ``h x w`` image drawn over it: ``int [h, w, 3]``."""
    ys, xs = tile
    rows = (ys.start + (np.arange(h) + 0.5) * (ys.stop - ys.start) / h).astype(int)
    cols = (xs.start + (np.arange(w) + 0.5) * (xs.stop - xs.start) / w).astype(int)
    return sheet[rows[:, None], cols[None, :]].astype(int)


def _check_preview(path, m) -> None:
    """The preview shows 16 faces, 4 per cell (group, class) in the manifest's order, 8 to a
    row, each as drawn and below it with its regions colored where its mask says: read back
    from the pixels, each visible face pixel's region (the color that explains it within 2
    levels) is the mask's (white landmark dots excepted)."""
    sheet = read_rgb(path)
    tiles = _tiles(sheet)
    assert len(tiles) == 32  # 16 faces, two tiles each
    picks = m.df.groupby(["group", "label"], sort=True).head(4)
    picks = picks.sort_values(["group", "label"], kind="stable")
    for k, (path_k, mask_k) in enumerate(zip(picks["path"], picks["mask"], strict=True)):
        image = read_rgb(m.abspath(path_k)).astype(float)
        labels = read_label_map(m.abspath(mask_k))
        r, c = divmod(k, 8)
        top, bottom = tiles[16 * r + c], tiles[16 * r + 8 + c]
        assert min(s.stop - s.start for s in top) >= 64  # no face shown below its size
        drawn = _sample(sheet, top, *labels.shape)
        assert (np.abs(drawn - image).max(axis=2) == 0).mean() > 0.99
        shown = _sample(sheet, bottom, *labels.shape)
        candidates = [image] + [np.rint(0.45 * image + 0.55 * np.array(OVERLAY[CODE_NAMES[code]]))
                                for code in range(1, 7)]  # fmt: skip
        error = np.stack([np.abs(shown - cand).max(axis=2) for cand in candidates])
        seen, explained = error.argmin(axis=0), error.min(axis=0) <= 2
        assert explained.mean() > 0.9  # landmark dots cover the rest
        assert (seen == labels)[explained].mean() > 0.995  # a 1 px shift of the mask: 0.93


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


def test_parser_source_writes_the_parsers_mapped_argmax(synth_small, tmp_path):
    """A parser checkpoint (random weights, the right layout) is what makes the masks: each
    written mask is, by hand, the argmax of that parser's logits on the face at 512 px,
    mapped to regions by DESIGN.md's class table and sampled at the 64 px pixel centres."""
    import torch.nn.functional as F

    from saliency.faces.bisenet import BiSeNet

    torch.manual_seed(0)
    parser = BiSeNet().eval()
    torch.save(parser.state_dict(), tmp_path / "parser.pth")
    df = pd.read_csv(synth_small / "manifest.csv").head(2)[["path", "label", "group"]]
    df["path"] = [str(synth_small / p) for p in df["path"]]
    df.to_csv(tmp_path / "m.csv", index=False)
    argv = ["--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"),
            "--parser-weights", str(tmp_path / "parser.pth"), "--preview", "0"]  # fmt: skip
    assert regions(*argv) == 0
    out = read_manifest(tmp_path / "o" / "manifest.csv")
    assert len(out) == 2 and set(out.df["mask_source"]) == {"parsing"}
    written = np.stack([read_label_map(out.abspath(p)) for p in out.df["mask"]])
    # by hand: upstream's input (bilinear antialiased resize to 512, rounded, ImageNet mean
    # and std), the argmax, CelebAMask-HQ class -> region, nearest sampling back to 64 px
    images = np.stack([read_rgb(p) for p in df["path"]])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, (512, 512), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = parser((x.round().clamp(0, 255) / 255 - mean) / std)
    top2 = logits.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1] > 1e-6).numpy()[:, 4::8, 4::8]  # centres: 8 i + 4
    lut = np.zeros(19, np.uint8)
    for cls, region in CLASS_TO_REGION.items():
        lut[cls] = REGION_CODES[region]
    want = lut[logits.argmax(1).numpy()][:, 4::8, 4::8]
    assert written.shape == (2, 64, 64) and clear.mean() > 0.999
    np.testing.assert_array_equal(written[clear], want[clear])
    assert len(np.unique(want)) >= 3  # the parser's answer varies over the face


# DESIGN.md, "Regions": CelebAMask-HQ classes skin 1, brows 2/3, eyes 4/5, glasses 6,
# ears 7/8, nose 10, mouth 11, lips 12/13, hair 17; the others are no region
CLASS_TO_REGION = {1: "skin", 2: "brows", 3: "brows", 4: "eyes", 5: "eyes", 6: "eyes",
                   7: "skin", 8: "skin", 10: "nose", 11: "mouth", 12: "mouth", 13: "mouth",
                   17: "hair"}  # fmt: skip


@pytest.mark.parametrize("source", ["synthetic", "nearest"])
def test_forced_sources_are_checked(synth_small, tmp_path, source, capsys):
    argv = ["--manifest", str(synth_small / "manifest.csv"), "--out", str(tmp_path)]
    if source == "nearest":
        assert regions(*argv, "--source", source) == 2  # one line listing the choices
        err = capsys.readouterr().err
        assert "auto" in err and err.count("\n") == 1
    else:
        assert regions(*argv, "--source", source, "--preview", "0") == 0
        out = read_manifest(tmp_path / "manifest.csv")
        assert set(out.df["mask_source"]) == {"synthetic"}
        assert not (tmp_path / "regions_preview.png").exists()  # --preview 0 writes none
