"""Options of `saliency run`, `align`, `ablate` and `predict`, checked end to end.

Proves: a stage interrupted inside `saliency run` (Ctrl-C in explain's second batch) is
resumed by the next `saliency run`, which says so, computes only the rows not yet stored
and ends with the files of an uninterrupted run; `--profile` on the command line lays the
study's profile over it (and its absence takes it off again); `align` keeps the largest of
several faces and records `faces_found`, and `--multiple skip` skips such images with the
reason; `ablate --mode keep` with the mean, gray and noise fills gives, on the hand-weighted
brows reader, the logits derived here from the reader's formula on the filled images, and
its McNemar p-values are those of the per-image flips; `predict` repeats the at-chance
warning with the numbers of its own predictions.
"""

import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, norm

from saliency.cli import main

METHODS = ["cam", "gradcam", "ig"]
STUDY = """
[study]
name = "tiny"
out = "base_out"
device = "cpu"
workers = 0

[data]
source = "manifest"
path = {manifest}

[train]
size = 32
epochs = 1
batch_size = 32

[explain]
methods = ["cam", "gradcam", "ig"]
batch_size = 8
chunk = 8
ig = {{ n_steps = 4 }}

[profiles.small.study]
out = "small_out"

[profiles.small.explain]
limit = 8
methods = ["cam"]
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_tiny):
    """A study TOML on `synth_tiny` and an out folder where its data and train stages are
    done (one epoch at 32 px); tests copy the folder and run the rest."""
    root = tmp_path_factory.mktemp("study")
    toml = root / "study.toml"
    toml.write_text(STUDY.format(manifest=json.dumps(str(synth_tiny / "manifest.csv"))))
    out = root / "trained"
    assert main(["run", str(toml), "--out", str(out), "--only", "data", "train"]) == 0
    return toml, out


def _n_test(synth_tiny) -> int:
    m = pd.read_csv(synth_tiny / "manifest.csv", keep_default_na=False)
    return int((m["split"] == "test").sum())


def test_an_interrupted_stage_resumes_through_run_with_an_uninterrupted_runs_files(
    trained, synth_tiny, tmp_path, monkeypatch, capsys
):
    """Ctrl-C in explain's second batch of 8 (chunk 8): the study records explain as started,
    each method's progress holds the first 8 rows. The next `saliency run` plans "resume",
    says it resumed after 8 images, explains only the remaining rows, and its maps, index
    and meta equal those of a copy that ran without interruption (bit for bit: same
    checkpoint, same batches, CPU)."""
    import saliency.stages.explain as explain_stage

    toml, done = trained
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    shutil.copytree(done, ref)
    shutil.copytree(done, cut)
    assert main(["run", str(toml), "--out", str(ref)]) == 0
    n = _n_test(synth_tiny)
    assert n > 16  # at least three batches: one stored, one interrupted, one more

    real, rows = explain_stage.explain_batch, []

    def interrupted(model, unit, *args, **kwargs):
        if rows:
            raise KeyboardInterrupt  # the user's Ctrl-C, inside the second batch
        rows.append(len(unit))
        return real(model, unit, *args, **kwargs)

    monkeypatch.setattr(explain_stage, "explain_batch", interrupted)
    capsys.readouterr()
    assert main(["run", str(toml), "--out", str(cut)]) == 130
    assert "saliency run: interrupted" in capsys.readouterr().err
    assert json.loads((cut / "study.json").read_text())["explain"]["status"] == "started"
    folder = cut / "run" / "saliency" / "test"
    for m in METHODS:
        assert json.loads((folder / m / ".progress.json").read_text())["done"] == 8
        assert not (folder / m / "index.csv").exists()

    def counted(model, unit, *args, **kwargs):
        rows.append(len(unit))
        return real(model, unit, *args, **kwargs)

    rows.clear()
    monkeypatch.setattr(explain_stage, "explain_batch", counted)
    assert main(["run", str(toml), "--out", str(cut)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"explain\s+resume\s+interrupted; continuing where it stopped", printed)
    assert re.search(r"(data|train)\s+skip", printed)
    assert f"resumed after 8 of {n} images" in printed
    assert sum(rows) == n - 8 and rows[0] == 8  # rows 0-7 were not explained again
    state = json.loads((cut / "study.json").read_text())["explain"]
    assert state["status"] == "done"
    assert (
        state["fingerprint"]
        == json.loads((ref / "study.json").read_text())["explain"]["fingerprint"]
    )
    for m in METHODS:
        a, b = ref / "run/saliency/test" / m, folder / m
        np.testing.assert_array_equal(np.load(b / "maps.npy"), np.load(a / "maps.npy"))
        assert (b / "index.csv").read_text() == (a / "index.csv").read_text()
        meta_a, meta_b = (json.loads((f / "meta.json").read_text()) for f in (a, b))
        for meta in (meta_a, meta_b):
            meta["checkpoint"].pop("path")  # the copies' own folders
        assert meta_b == meta_a


def test_profile_on_the_command_line(trained, synth_tiny, tmp_path, monkeypatch, capsys):
    """`--profile small` lays [profiles.small] over the study: explain runs on 8 images
    with cam only, and study.json records those settings; the same file without
    `--profile` re-runs explain with the base settings and names the change; the profile's
    [study] table sets the out folder; an unknown profile is an error naming the valid
    ones."""
    toml, done = trained
    out = tmp_path / "p"
    shutil.copytree(done, out)
    assert main(["run", str(toml), "--profile", "small", "--out", str(out)]) == 0
    folder = out / "run" / "saliency" / "test"
    assert sorted(p.name for p in folder.iterdir()) == ["cam"]
    assert np.load(folder / "cam" / "maps.npy").shape == (8, 32, 32)
    settings = json.loads((out / "study.json").read_text())["explain"]["settings"]
    assert settings["limit"] == 8 and settings["methods"] == ["cam"]

    capsys.readouterr()
    assert main(["run", str(toml), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "explain.limit: 8 -> None" in printed
    assert "explain.methods: ['cam'] -> ['cam', 'gradcam', 'ig']" in printed
    for m in METHODS:
        assert np.load(folder / m / "maps.npy").shape == (_n_test(synth_tiny), 32, 32)

    assert main(["run", str(toml), "--profile", "fast", "--out", str(out)]) == 2
    assert "no profile 'fast' in the study; its profiles: small" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # study.out is relative to the current folder
    assert main(["run", str(toml), "--profile", "small", "--only", "data"]) == 0
    assert (tmp_path / "small_out" / "study.json").is_file()
    assert not (tmp_path / "base_out").exists()


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """one.png: the head of scikit-image's astronaut, 512 px (one face). two.png: the same
    beside a smaller gray copy (352 px, R = G = B), so the kept face shows by its colour.
    Head crops only: her suit holds a weak false face for dlib at some canvas sizes."""
    import cv2
    from skimage import data as skimage_data

    from saliency.data.imageio import write_rgb

    d = tmp_path_factory.mktemp("faces")
    head = skimage_data.astronaut()[:256, 96:352]
    big = cv2.resize(head, (512, 512), interpolation=cv2.INTER_CUBIC)
    small = cv2.resize(head, (352, 352), interpolation=cv2.INTER_CUBIC)
    gray = np.repeat(np.rint(small.mean(-1, keepdims=True)), 3, axis=-1).astype(np.uint8)
    canvas = np.zeros((512, 512 + 352, 3), np.uint8)
    canvas[:, :512], canvas[80:432, 512:] = big, gray
    write_rgb(d / "one.png", big)
    write_rgb(d / "two.png", canvas)
    rows = {"path": ["one.png", "two.png"], "label": ["female"] * 2, "group": ["A", "B"]}
    pd.DataFrame(rows).to_csv(d / "m.csv", index=False)
    return d


def _aligned(out):
    from saliency.data.imageio import read_rgb
    from saliency.data.manifest import read_manifest

    m = read_manifest(out / "manifest.csv")
    names = [s.rsplit("/", 1)[-1] for s in m.df["source_path"]]
    crops = {n: read_rgb(m.abspath(p)) for n, p in zip(names, m.df["path"], strict=True)}
    found = dict(zip(names, m.df["faces_found"].astype(int), strict=True))
    return crops, found


def test_align_keeps_the_largest_face_and_counts_the_faces(faces, capsys):
    """Default `--multiple largest`: both images are aligned; faces_found is 1 and 2; the
    crop of two.png is the colour face (the larger), not the gray one."""
    out = faces / "largest"
    argv = ["align", "--manifest", str(faces / "m.csv"), "--out", str(out), "--workers", "0"]
    assert main(argv) == 0
    assert "1 image(s) had several faces: kept the largest" in capsys.readouterr().out
    crops, found = _aligned(out)
    assert found == {"one.png": 1, "two.png": 2}
    for crop in crops.values():  # a gray face would give R = G = B everywhere
        assert (crop[..., 0] != crop[..., 1]).mean() > 0.5
    assert len(pd.read_csv(out / "skipped.csv")) == 0


def test_align_multiple_skip_skips_images_with_several_faces(faces):
    """`--multiple skip`: two.png is skipped with the reason and the number of faces,
    one.png is aligned with faces_found 1, and the skip rates count it (group B: 1 of 1)."""
    out = faces / "skip"
    argv = ["align", "--manifest", str(faces / "m.csv"), "--out", str(out), "--workers", "0",
            "--multiple", "skip"]  # fmt: skip
    assert main(argv) == 0
    crops, found = _aligned(out)
    assert found == {"one.png": 1}
    skipped = pd.read_csv(out / "skipped.csv")
    assert skipped["path"].tolist() == ["two.png"]
    assert skipped["reason"].tolist() == ["several faces (2); --multiple skip"]
    rates = pd.read_csv(out / "align_rates.csv").set_index("selection")
    assert rates.loc["all", "skipped"] == 1 and rates.loc["all", "aligned"] == 1
    assert rates.loc["B", "skip_rate"] == 1.0 and rates.loc["A", "skip_rate"] == 0.0


@pytest.fixture(scope="module")
def reader_copy(brows_reader_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("keep") / "run"
    shutil.copytree(brows_reader_run, run, ignore=shutil.ignore_patterns(
        "saliency", "ablation", "share", "averages", "eval", "figures", "config.json"))  # fmt: skip
    return run


def _reader_logit(image: np.ndarray) -> float:
    """conftest's reader: 400 * mean over pixels of t * (d - 0.5), t the brows mask, d the
    darkness 1 - (channel mean) / 255."""
    from conftest import brows_world_labels

    from saliency.data.regions import REGION_CODES

    t = brows_world_labels() == REGION_CODES["brows"]
    d = 1.0 - image.astype(np.float64).mean(axis=-1) / 255.0
    return 400.0 * float(np.mean(t * (d - 0.5)))


def _fill_source(image: np.ndarray, fill: str, seed: int) -> np.ndarray:
    """What the fill puts in a pixel (README, "ablate"): the image's own mean colour
    (rounded), gray 128, or uniform noise drawn with the image's seed."""
    if fill == "mean":
        colour = np.rint(image.reshape(-1, 3).astype(np.float64).mean(axis=0))
        return np.broadcast_to(colour, image.shape).astype(np.uint8)
    if fill == "gray":
        return np.full_like(image, 128)
    return np.random.default_rng(seed).integers(0, 256, image.shape, dtype=np.uint8)


def _selections(df: pd.DataFrame) -> dict[str, np.ndarray]:
    cell = df["group"] + "_" + df["label"].str[0].str.upper()
    out = {"all": np.ones(len(df), bool)}
    for col, values in (("label", ("female", "male")), ("group", ("A", "B"))):
        out |= {v: (df[col] == v).to_numpy() for v in values}
    out |= {c: (cell == c).to_numpy() for c in ("A_F", "A_M", "B_F", "B_M")}
    return out


def _mcnemar(b: int, c: int) -> float:
    return 1.0 if b + c == 0 else binomtest(min(b, c), b + c, 0.5).pvalue


@pytest.mark.parametrize("fill", ["mean", "gray", "noise"])
def test_ablate_keep_with_each_fill_gives_the_readers_logit_by_hand(reader_copy, brows_world, fill):
    """Keep-only brows leaves the brows' pixels as they were: every score stays exactly.
    Keep-only mouth fills everything farther than 7 px from the mouth (dilation 2 px +
    feather 5 px at 64 px) with weight 1, so the brows become the fill: the reader's logit
    on the filled image, computed here, is the new score (logit of the true class: z for
    men, -z for women). McNemar's p per selection is the exact binomial test of the
    per-image flips; for gray (darkness 0.498 < 0.5: every face reads female) the flips
    follow from the labels: men right before and wrong after, flipped women the reverse."""
    from saliency.data.imageio import read_rgb

    r, seed = str(reader_copy), 7
    for region in ("brows", "mouth"):
        argv = ["ablate", "--run", r, "--mode", "keep", "--fill", fill, "--region", region,
                "--seed", str(seed), "--workers", "0"]  # fmt: skip
        assert main(argv) == 0
    m = pd.read_csv(brows_world / "manifest.csv", keep_default_na=False)
    sign = np.where(m["label"] == "male", 1.0, -1.0)
    images = [read_rgb(brows_world / p) for p in m["path"]]
    before = np.array([_reader_logit(im) for im in images])
    after = []
    for i, im in enumerate(images):  # the noise's seed: --seed plus the image's row
        filled = _fill_source(im, fill, seed + i)
        after.append(_reader_logit(filled))  # only the brows count; they are all fill
    after = np.array(after)

    brows = pd.read_csv(reader_copy / "ablation" / f"brows_{fill}_keep" / "per_image.csv")
    mouth = pd.read_csv(reader_copy / "ablation" / f"mouth_{fill}_keep" / "per_image.csv")
    for per in (brows, mouth):
        assert [p.rsplit("/", 1)[-1] for p in per["path"]] == [
            p.rsplit("/", 1)[-1] for p in m["path"]
        ]  # one row per image, in the manifest's order
        np.testing.assert_allclose(per["score_before"], sign * before, atol=1e-4)
    np.testing.assert_array_equal(brows["score_after"], brows["score_before"])
    assert (brows["region_area"] == 88).all()  # 2 brows of 4 x 11 px
    np.testing.assert_allclose(mouth["score_after"], sign * after, atol=1e-4)
    np.testing.assert_allclose(mouth["prob_after"], 1 / (1 + np.exp(-sign * after)), atol=1e-5)
    clear = np.abs(after) > 1e-3
    male = np.where(after > 0, "male", "female")
    assert (mouth["pred_after"][clear] == male[clear]).all()
    assert not np.allclose(after, before)  # the fill does change the logit

    summary = pd.read_csv(reader_copy / "ablation" / f"mouth_{fill}_keep" / "summary.csv")
    summary = summary.set_index("selection")
    sel = _selections(m)
    assert set(summary.index) == set(sel)
    right_before = mouth["correct_before"].to_numpy()
    right_after = mouth["correct_after"].to_numpy()
    for name, mask in sel.items():
        b = int((right_before & ~right_after)[mask].sum())
        c = int((~right_before & right_after)[mask].sum())
        assert summary.loc[name, "mcnemar_p"] == pytest.approx(_mcnemar(b, c), rel=1e-4), name
    if fill == "gray":
        flipped = m["flipped"].astype(str) == "True"
        assert (after < 0).all()
        for name, mask in sel.items():
            b = int((m["label"] == "male")[mask].sum())
            c = int(flipped[mask].sum())
            assert summary.loc[name, "mcnemar_p"] == pytest.approx(_mcnemar(b, c), rel=1e-4)


def _wilson(k: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval (Wilson 1927), exact bounds at 0 and n."""
    z, p = norm.ppf(0.975), k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if k == 0 else centre - half, 1.0 if k == n else centre + half)


def test_predict_repeats_the_at_chance_warning(tiny_run, synth_tiny, capsys):
    """`tiny_run` is at chance on test. Each `predict` call prints the warning once, before
    its predictions, with the accuracy of those predictions on the test images (k of n,
    counted here against the labels), its Wilson interval and the majority class's share."""
    m = pd.read_csv(synth_tiny / "manifest.csv", keep_default_na=False)
    test = m[m["split"] == "test"]
    paths = [str(synth_tiny / p) for p in test["path"]]
    n = len(test)
    level = test["label"].value_counts().max() / n
    capsys.readouterr()
    for _ in range(2):  # every call repeats it
        assert main(["predict", "--run", str(tiny_run), "--device", "cpu", *paths]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 1 + n
        predicted = [line.split()[1] for line in lines[1:]]
        k = int(sum(p == label for p, label in zip(predicted, test["label"], strict=True)))
        lo, hi = _wilson(k, n)
        assert lo <= level  # the premise: at chance by the README's rule
        assert lines[0] == (
            f"warning: the model is at chance on test: accuracy {k / n:.1%} [{lo:.1%}, "
            f"{hi:.1%}] includes the majority class's {level:.1%}; its maps and region "
            "effects show noise, not what it learned"
        )


def test_predict_does_not_warn_about_a_model_above_chance(reader_copy, brows_world, capsys):
    """The brows reader is right on 44 of 48 (Wilson lower bound 0.80 > 0.5): no warning."""
    r = str(reader_copy)
    assert main(["evaluate", "--run", r, "--workers", "0"]) == 0
    capsys.readouterr()
    assert (
        main(["predict", "--run", r, "--device", "cpu", str(brows_world / "images/000.png")]) == 0
    )
    out = capsys.readouterr().out
    assert "warning" not in out and len(out.splitlines()) == 1
