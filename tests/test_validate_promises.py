"""Two promises of ``saliency validate`` that no other test checks (audit, section 3, items 2
and 4), proven on the hand-weighted brows reader and on hand-made tables.

- The deletion / insertion verdict: a method passes when its deletion area is below a random
  order's and its insertion area above, both 95% intervals excluding zero. On the reader
  (``logit = w * mean(t * (d - 0.5))``, ``t`` the brows) a map that puts every brows pixel
  first reaches the fully filled probability at the first step of deletion and the original
  at the first step of insertion (the brows are 88 px, under 1/16 of 4096), so its areas are
  known exactly from the images; a map that puts the brows last is known exactly too, and
  must fail. The rule itself is checked on tables whose answer is obvious.
- ``validate`` makes the missing delete-mode ablations itself, and its verdict reads them:
  the written ablation agrees with the reader's formula (only deleting the brows changes the
  logit), and a tampered ablation file changes the verdict.

Expected values come from the images, the reader's formula and a 5x5 box blur / Gaussian blur
computed here by hand; nothing is trained.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import BROWS_SIZE, brows_world_labels

from saliency.analysis.validation import curve_summary
from saliency.cli import main
from saliency.data.imageio import read_rgb
from saliency.data.regions import REGION_CODES, REGIONS
from saliency.models.checkpoint import load_model
from saliency.stages.validate import ValidateConfig, passes, validate_run

W, D0 = 400.0, 0.5  # the reader of conftest.brows_reader_run
BROWS = brows_world_labels() == REGION_CODES["brows"]
HW = BROWS.size
STEPS = 16  # curve steps; the first one (256 px) already covers the 88 brows pixels
N_IMAGES = 48


# -- the reader's world, by hand ---------------------------------------------------------
def darkness(img: np.ndarray) -> np.ndarray:
    """``d = 1 - gray`` of ``uint8 [..., H, W, 3]`` (gray: the channel mean in [0, 1])."""
    return 1 - img.astype(np.float64).mean(-1) / 255


def reader_logit(d: np.ndarray) -> np.ndarray:
    """The reader's log-odds of ``male`` from darkness ``[N, H, W]``."""
    return W * (BROWS * (d - D0)).sum((-2, -1)) / HW


def box_blur(img: np.ndarray) -> np.ndarray:
    """The blur fill at 64 px: a 5x5 box (the odd integer nearest 15 * 64 / 224 = 4.3),
    rounded to 8 bits (integer sums over 25: never a half level). Exact away from the border,
    which is all the brows (rows 21-24, columns 17-46) need."""
    x = np.pad(img.astype(np.int64), ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    s = sum(x[:, i : i + BROWS_SIZE, j : j + BROWS_SIZE] for i in range(5) for j in range(5))
    return np.rint(s / 25)


def gaussian_blur(img: np.ndarray, sigma: float = BROWS_SIZE / 16) -> np.ndarray:
    """IG's blur baseline (sigma = size / 16, 25 taps) in [0, 1]; exact away from the border
    (12 px), as the brows are."""
    r = int(round(3 * sigma))
    x = np.arange(-r, r + 1)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    u = np.pad(img.astype(np.float64) / 255, ((0, 0), (r, r), (r, r), (0, 0)), mode="reflect")
    rows = sum(k[i] * u[:, i : i + BROWS_SIZE] for i in range(2 * r + 1))
    return sum(k[j] * rows[:, :, j : j + BROWS_SIZE] for j in range(2 * r + 1))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.fixture(scope="module")
def world(brows_world):
    """Images ``[48, 64, 64, 3]``, the manifest, each image's predicted sign (+1 male) and
    its target-class probability before (p0) and after the whole image is blurred (pf)."""
    manifest = pd.read_csv(brows_world / "manifest.csv", keep_default_na=False)
    images = np.stack([read_rgb(brows_world / p) for p in manifest["path"]])
    z0 = reader_logit(darkness(images))
    zf = reader_logit(1 - box_blur(images).mean(-1) / 255)
    sign = np.where(z0 > 0, 1.0, -1.0)  # maps explain the predicted class
    return {"manifest": manifest, "images": images, "z0": z0, "zf": zf, "sign": sign,
            "p0": sigmoid(sign * z0), "pf": sigmoid(sign * zf)}  # fmt: skip


def first_and_last_areas(p0, pf, steps=STEPS):
    """Mean trapezoid areas of deletion and insertion when the brows come first and last.
    Brows first: deletion [p0, pf, ..., pf], insertion [pf, p0, ..., p0]. Brows last (the
    88 lowest of 4096; step 15 removes 3840 < 4008 pixels): deletion [p0, ..., p0, pf],
    insertion [pf, ..., pf, p0]."""
    edge = (p0 + pf) / 2
    return {
        "first": (np.mean((edge + (steps - 1) * pf) / steps),
                  np.mean((edge + (steps - 1) * p0) / steps)),
        "last": (np.mean(((steps - 1) * p0 + edge) / steps),
                 np.mean(((steps - 1) * pf + edge) / steps)),
    }  # fmt: skip


@pytest.fixture(scope="module")
def explained(brows_reader_run, tmp_path_factory):
    """A copy of the reader run with cam, gradcam and ig (blur baseline) maps of its 48
    test faces, and no ablation."""
    run = tmp_path_factory.mktemp("validate_promises") / "explained"
    shutil.copytree(brows_reader_run, run, ignore=shutil.ignore_patterns(
        "saliency", "ablation", "share", "validation", "null", "agreement"))  # fmt: skip
    assert main(["explain", "--run", str(run), "--methods", "cam,gradcam,ig",
                 "--ig-baseline", "blur", "--workers", "0", "--device", "cpu"]) == 0  # fmt: skip
    return run


def validate_cfg(run) -> ValidateConfig:
    return ValidateConfig(run, randomization_images=2, curve_images=N_IMAGES,
                          curve_steps=STEPS, floor=False, bootstrap=500, device="cpu",
                          workers=0)  # fmt: skip


@pytest.fixture(scope="module")
def validated(explained, tmp_path_factory):
    """``validate`` on a copy of ``explained``, which has maps and no ablation/ folder."""
    run = tmp_path_factory.mktemp("validate_promises") / "validated"
    shutil.copytree(explained, run)
    assert not (run / "ablation").exists()
    return run, validate_run(validate_cfg(run))


# -- item 2: the deletion / insertion verdict ---------------------------------------------
def test_reader_maps_pass_the_curves_with_the_brows_first_areas(validated, world):
    """cam, gradcam and ig put every brows pixel first on the reader, so their areas are the
    brows-first ones computed from the images; a random order removes the brows gradually,
    so its areas lie strictly between brows-first and brows-last; all three methods pass."""
    run, res = validated
    index = pd.read_csv(run / "saliency" / "test" / "cam" / "index.csv")
    assert len(index) == N_IMAGES
    assert list(index["target"]) == list(np.where(world["sign"] > 0, "male", "female"))
    # precondition for ig: (d(x) - d(baseline)) has the target's sign on every brows pixel,
    # so its map is positive exactly on the brows (zero elsewhere: the gradient is)
    d_base = 1 - gaussian_blur(world["images"]).mean(-1)
    ig = world["sign"][:, None, None] * (darkness(world["images"]) - d_base)
    assert (ig[:, BROWS] > 0).all()
    # the fill moves every image's evidence toward the skin: pf < p0
    assert (world["pf"] < world["p0"]).all()
    areas = first_and_last_areas(world["p0"], world["pf"])
    s = res.curves.set_index("method")
    for m in ("cam", "gradcam", "ig"):
        assert s.loc[m, "deletion_auc"] == pytest.approx(areas["first"][0], abs=1e-5), m
        assert s.loc[m, "insertion_auc"] == pytest.approx(areas["first"][1], abs=1e-5), m
        assert s.loc[m, "passed"] is True, m
        assert s.loc[m, "deletion_vs_random_high"] < 0 < s.loc[m, "insertion_vs_random_low"]
    assert areas["first"][0] < s.loc["random", "deletion_auc"] < areas["last"][0]
    assert areas["last"][1] < s.loc["random", "insertion_auc"] < areas["first"][1]
    assert pd.isna(s.loc["random", "passed"])  # the reference has no verdict
    # the written table is the result; the mean curves are p0 then pf at every later step
    written = pd.read_csv(run / "validation" / "curves_summary.csv").set_index("method")
    assert written.loc[["cam", "gradcam", "ig"], "passed"].astype(bool).all()
    curves = pd.read_csv(run / "validation" / "curves.csv")
    cam = curves[(curves["method"] == "cam") & (curves["curve"] == "deletion")]
    expected = [world["p0"].mean()] + [world["pf"].mean()] * STEPS
    np.testing.assert_allclose(cam["probability"], expected, atol=1e-5)
    assert res.verdicts.set_index("method")["curves_passed"].astype(bool).all()


def test_an_inverted_map_fails_where_the_right_one_passes(brows_reader_run, world):
    """Through the functions validate calls: the reader's own map (brows first) passes with
    the brows-first areas; its negation puts the brows last (areas known exactly) and fails
    both ways: deletion above random, insertion below."""
    model, pre, _, _ = load_model(brows_reader_run / "checkpoints" / "best.pt")
    images = torch.from_numpy(world["images"])
    target = torch.from_numpy((world["sign"] > 0).astype(np.int64))
    right = BROWS * world["sign"][:, None, None] * (darkness(world["images"]) - D0)
    assert (right[:, BROWS] > 0).all()  # dark brows on men, light on women: one sign each
    maps = {"right": right.astype(np.float32), "inverted": -right.astype(np.float32)}
    _, areas = passes.perturbation_curves(model, images, pre, target, maps, STEPS, "blur", 0)
    s = curve_summary(areas, n_boot=1000).set_index("method")
    expected = first_and_last_areas(world["p0"], world["pf"])
    assert s.loc["right", "deletion_auc"] == pytest.approx(expected["first"][0], abs=1e-5)
    assert s.loc["inverted", "deletion_auc"] == pytest.approx(expected["last"][0], abs=1e-5)
    assert s.loc["inverted", "insertion_auc"] == pytest.approx(expected["last"][1], abs=1e-5)
    assert bool(s.loc["right", "passed"]) and not bool(s.loc["inverted", "passed"])
    assert s.loc["inverted", "deletion_vs_random_low"] > 0
    assert s.loc["inverted", "insertion_vs_random_high"] < 0


def test_the_pass_rule_on_hand_made_areas():
    """The rule on tables whose answer is obvious. Constant differences have a one-point
    bootstrap interval, so a difference of exactly 0 touches zero and must fail; differences
    of +-0.45 around -0.05 (20 images, standard error 0.1) beat random on average yet their
    interval spans 0, so they fail too."""
    n = 20
    rd, ri = np.linspace(0.4, 0.6, n), np.linspace(0.3, 0.5, n)
    noisy = np.where(np.arange(n) % 2 == 0, -0.5, 0.4)  # mean -0.05
    cases = {
        "good": (rd - 0.1, ri + 0.1, True),
        "deletion_only": (rd - 0.1, ri - 0.1, False),
        "insertion_only": (rd + 0.1, ri + 0.1, False),
        "reversed": (rd + 0.1, ri - 0.1, False),
        "deletion_touches_0": (rd.copy(), ri + 0.1, False),
        "insertion_touches_0": (rd - 0.1, ri.copy(), False),
        "deletion_interval_spans_0": (rd + noisy, ri + 0.1, False),
    }
    areas = {"random": (rd, ri)} | {k: (d, i) for k, (d, i, _) in cases.items()}
    s = curve_summary(areas, n_boot=2000).set_index("method")
    for name, (d, i, passes_) in cases.items():
        assert s.loc[name, "passed"] == passes_, name
        assert s.loc[name, "deletion_vs_random"] == pytest.approx(np.mean(d - rd)), name
        assert s.loc[name, "insertion_vs_random"] == pytest.approx(np.mean(i - ri)), name
    assert s.loc["deletion_touches_0", "deletion_vs_random_high"] == 0.0
    assert s.loc["insertion_touches_0", "insertion_vs_random_low"] == 0.0
    t = s.loc["deletion_interval_spans_0"]
    assert t["deletion_vs_random"] < 0 and t["deletion_vs_random_low"] < 0 < t[
        "deletion_vs_random_high"]  # fmt: skip
    assert s.loc["random", "passed"] is None


# -- item 4: validate makes the missing ablations -----------------------------------------
def test_validate_writes_the_ablations_the_readers_formula_implies(validated, world):
    """Every region's delete-mode ablation is written. prob_before is the reader's formula
    for the true class; deleting any region but the brows leaves the brows pixels alone
    (the fill protects the other features), so the logit is unchanged; deleting the brows
    blends each brows pixel between itself and the 5x5 box blur, so the logit lies between
    the per-pixel extremes, moving toward the skin: the true class's probability falls,
    except on the flipped B_F women (dark brows), where it rises."""
    run, res = validated
    m = world["manifest"]
    truth = np.where(m["label"] == "male", 1.0, -1.0)
    d, d_blur = darkness(world["images"]), 1 - box_blur(world["images"]).mean(-1) / 255
    half = 0.5 / 255  # each blended channel is rounded to a grey level
    lo = reader_logit(np.minimum(d, d_blur) - half)
    hi = reader_logit(np.maximum(d, d_blur) + half)
    for region in REGIONS:
        f = run / "ablation" / f"{region}_blur_delete" / "per_image.csv"
        per = pd.read_csv(f, keep_default_na=False).set_index("path").loc[m["path"]]
        assert len(per) == N_IMAGES, region
        np.testing.assert_allclose(per["prob_before"], sigmoid(truth * world["z0"]), atol=1e-5)
        np.testing.assert_allclose(per["score_before"], truth * world["z0"], atol=1e-4)
        if region != "brows":
            np.testing.assert_allclose(per["score_after"], per["score_before"], atol=1e-5)
            continue
        z_after = truth * per["score_after"].to_numpy()  # back to the male log-odds
        assert (z_after >= lo - 1e-4).all() and (z_after <= hi + 1e-4).all()
        drop = (per["prob_before"] - per["prob_after"]).to_numpy()
        flipped = m["flipped"].astype(str).str.lower().eq("true").to_numpy()
        assert flipped.sum() == 4
        assert (drop[~flipped] > 0).all() and (drop[flipped] < 0).all()
    v = res.verdicts.set_index("method")
    assert (v["ablation_leader"] == "brows").all(), v
    assert (v["verdict"] == "no null model").all() and (v["recovered"] == "").all()


def test_the_verdict_reads_the_ablations_on_disk(validated, tmp_path):
    """The ablation validate wrote is what its verdict uses: make the mouth's file claim that
    deleting the mouth drops every image to probability 0 (a mean drop of about 0.9, above
    the brows'), validate again, and the ablation leader becomes the mouth; the tampered file
    is read, not remade."""
    run = tmp_path / "run"
    shutil.copytree(validated[0], run)
    f = run / "ablation" / "mouth_blur_delete" / "per_image.csv"
    per = pd.read_csv(f, keep_default_na=False)
    per["prob_after"] = 0.0
    per.to_csv(f, index=False)
    res = validate_run(validate_cfg(run))
    assert (res.verdicts["ablation_leader"] == "mouth").all(), res.verdicts
    assert (pd.read_csv(f)["prob_after"] == 0).all()


def test_validate_makes_the_regions_a_partial_ablation_lacks(explained, tmp_path):
    """ "It makes the missing delete-mode ablations itself": a run ablated only for the eyes,
    nose and mouth gets the brows, skin and hair from validate, and the brows lead (only
    they move the reader's logit)."""
    run = tmp_path / "run"
    shutil.copytree(explained, run)
    for region in ("eyes", "nose", "mouth"):
        assert main(["ablate", "--run", str(run), "--region", region, "--workers", "0",
                     "--device", "cpu"]) == 0  # fmt: skip
    res = validate_run(validate_cfg(run))
    for region in REGIONS:
        assert (run / "ablation" / f"{region}_blur_delete" / "per_image.csv").is_file(), region
    assert (res.verdicts["ablation_leader"] == "brows").all(), res.verdicts
