"""Landmarks and alignment: a real photo, bad inputs, the similarity fit, the backends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from saliency.cli import main
from saliency.data.imageio import read_label_map, read_rgb
from saliency.data.manifest import read_manifest
from saliency.faces.align import fit_residual, similarity, template, transform_points, warp
from saliency.faces.landmarks import FIVE, five_points, make_backend


@pytest.fixture(scope="module")
def astronaut():
    """scikit-image's real photo; a dev dependency, so a missing install fails, never skips."""
    from skimage import data as skimage_data

    return skimage_data.astronaut()


def test_similarity_recovers_a_known_transform_exactly():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = np.deg2rad(20), 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + shift
    m = similarity(src, dst)
    np.testing.assert_allclose(m, np.hstack([scale * rot, shift[:, None]]), atol=1e-9)
    mirrored = src * [-1, 1]  # a reflection is not a similarity: the fit must not use one
    assert np.linalg.det(similarity(src, mirrored)[:, :2]) > 0


def test_dlib_finds_the_astronaut_and_alignment_puts_her_features_in_place(astronaut):
    faces = make_backend("dlib").faces(astronaut)
    assert len(faces) == 1
    matrix, misfit = fit_residual(faces[0].landmarks, 128)
    pts = transform_points(faces[0].landmarks, matrix)
    five, t = five_points(pts), template(128)
    iod = np.linalg.norm(t[1] - t[0])
    assert np.linalg.norm(five[:2] - t[:2], axis=1).max() < 0.03 * iod
    eyes_y = pts[36:48, 1].mean()
    nose_y, mouth_y = pts[30, 1], pts[48:68, 1].mean()
    assert eyes_y < nose_y < mouth_y  # upright
    assert abs(pts[48:68, 0].mean() - five[:2, 0].mean()) < 0.1 * iod  # mouth centred
    assert pts[36:42, 0].mean() < pts[42:48, 0].mean()  # not mirrored: left eye on the left
    crop = warp(astronaut, matrix, 128)
    assert crop.shape == (128, 128, 3) and misfit < 0.6


@pytest.fixture(scope="module")
def messy(tmp_path_factory, astronaut):
    """A manifest of a JPEG, grayscale, RGBA and EXIF-rotated photo, a zero-byte file, a
    text file named .jpg and a photo without a face."""
    d = tmp_path_factory.mktemp("messy")
    Image.fromarray(astronaut).save(d / "astro.jpg", quality=95)
    Image.fromarray(astronaut).convert("L").save(d / "gray.png")
    Image.fromarray(astronaut).convert("RGBA").save(d / "rgba.png")
    rotated = Image.fromarray(np.rot90(astronaut, 1).copy())
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the pixels are stored turned left
    rotated.save(d / "exif.jpg", exif=exif, quality=95)
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.jpg").write_text("not an image")
    from skimage import data as skimage_data

    Image.fromarray(skimage_data.coffee()).save(d / "coffee.png")
    names = ["astro.jpg", "gray.png", "rgba.png", "exif.jpg", "empty.jpg", "text.jpg", "coffee.png"]
    labels = ["female"] * 4 + ["male"] * 3
    groups = ["A", "A", "B", "B", "A", "B", "B"]
    pd.DataFrame({"path": names, "label": labels, "group": groups}).to_csv(d / "m.csv", index=False)
    out = d / "aligned"
    assert main(["align", "--manifest", str(d / "m.csv"), "--out", str(out), "--workers", "2"]) == 0
    return d, out


def test_bad_inputs_are_skipped_with_a_reason_and_nothing_is_lost(messy):
    d, out = messy
    aligned = read_manifest(out / "manifest.csv").df
    skipped = pd.read_csv(out / "skipped.csv")
    assert len(aligned) + len(skipped) == 7
    reasons = dict(zip(skipped["path"], skipped["reason"], strict=True))
    assert reasons["empty.jpg"].startswith("unreadable: empty file")
    assert reasons["text.jpg"].startswith("unreadable: not a readable image")
    assert reasons["coffee.png"] == "no face found"
    sources = {p.rsplit("/", 1)[-1] for p in aligned["source_path"]}
    assert sources == {"astro.jpg", "gray.png", "rgba.png", "exif.jpg"}
    rates = pd.read_csv(out / "align_rates.csv").set_index("selection")
    assert rates.loc["all", "skipped"] == 3 and rates.loc["B_M", "skip_rate"] == 1.0
    assert rates.loc["A_F", "skipped"] == 0 and rates.loc["A_F", "ci_high"] < 1.0


def test_exif_orientation_is_honoured(messy):
    _, out = messy
    aligned = read_manifest(out / "manifest.csv")
    by_source = {
        s.rsplit("/", 1)[-1]: p
        for s, p in zip(aligned.df["source_path"], aligned.df["path"], strict=True)
    }
    upright = read_rgb(aligned.abspath(by_source["astro.jpg"])).astype(float)
    turned = read_rgb(aligned.abspath(by_source["exif.jpg"])).astype(float)
    assert np.abs(upright - turned).mean() < 4.0  # the same crop, not a sideways face


def test_columns_backend_aligns_synthetic_faces_with_their_masks(tmp_path):
    from saliency.data.synth.config import SynthConfig
    from saliency.data.synth.generate import generate

    generate(SynthConfig(n=6, size=96, seed=2), tmp_path / "s", workers=0)
    source = str(tmp_path / "s" / "manifest.csv")
    argv = ["align", "--manifest", source, "--out", str(tmp_path / "a"), "--backend", "columns",
            "--size", "128", "--workers", "0"]  # fmt: skip
    assert main(argv) == 0
    m = read_manifest(tmp_path / "a" / "manifest.csv")
    assert len(m) == 6 and m.has_landmarks
    for _, row in m.df.iterrows():
        labels = read_label_map(m.abspath(row["mask"]))
        assert labels.shape == (128, 128)
        pts = np.array([row[f"{a}{i}"] for i in range(36, 48) for a in "xy"]).reshape(12, 2)
        ys, xs = np.nonzero(labels == 3)  # the warped mask's eyes lie under the aligned points
        assert np.hypot(xs.mean() - pts[:, 0].mean(), ys.mean() - pts[:, 1].mean()) < 1.5
        left, right = pts[:6].mean(0), pts[6:].mean(0)
        np.testing.assert_allclose([left, right], template(128)[:2], atol=1e-3)


def test_five_point_columns_are_enough_to_align(tmp_path, astronaut):
    faces = make_backend("dlib").faces(astronaut)
    five = five_points(faces[0].landmarks)
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    row = {"path": "a.png", "label": "female"}
    for name, (x, y) in zip(FIVE, five, strict=True):
        row |= {f"{name}_x": x, f"{name}_y": y}
    pd.DataFrame([row]).to_csv(tmp_path / "m.csv", index=False)
    argv = ["align", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"),
            "--backend", "columns", "--workers", "0"]  # fmt: skip
    assert main(argv) == 0
    out = pd.read_csv(tmp_path / "o" / "manifest.csv")
    np.testing.assert_allclose(
        out[["lefteye_x", "lefteye_y"]].to_numpy()[0], template(128)[0], atol=1e-2
    )


def test_fan_without_weights_explains_what_to_place_and_never_downloads(tmp_path, monkeypatch):
    import face_alignment  # noqa: F401 (installed by `make setup`; missing it fails here)
    import torch.hub

    from saliency.faces.landmarks import fan as fan_backend

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError) as err:
        make_backend("fan")
    path, url = fan_backend.fan_weights()
    message = str(err.value)
    assert str(path) in message and url in message and "never downloads" in message
    assert str(path).startswith(str(tmp_path / "hub"))
    assert main(["align", "--manifest", "x.csv", "--out", str(tmp_path), "--backend", "fan"]) == 2
