"""Image attributes (skin brightness, hair over the face, face area) and their relation to
errors per cell: exact values on hand-made masks, agreement with the generator's own
parameters, the penalized regression against hand computations, the adjusted gap on data
whose errors do or do not come from hair over the face, and the command end to end."""

import math
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import mannwhitneyu, spearmanr

from saliency.analysis.attributes import ATTRIBUTES
from saliency.analysis.attributes.gap import cell_gaps, matched_gap
from saliency.analysis.attributes.logistic import cell_ames, design, fit
from saliency.analysis.attributes.measure import (
    face_area,
    hair_over_face,
    lightness,
    measure_files,
    skin_brightness,
)
from saliency.analysis.attributes.tables import accuracy_bins
from saliency.cli import main
from saliency.data.cells import cell_column
from saliency.data.manifest import read_manifest
from saliency.data.regions import REGION_CODES as C
from saliency.data.synth.config import SynthConfig, parse_fringe
from saliency.data.synth.generate import assign_slots, generate, render_slot

CLASSES = ["female", "male"]


# -- exact values on hand-made masks -------------------------------------------------------


@pytest.mark.parametrize(
    ("rgb", "expected"),
    [((128, 128, 128), 53.585), ((255, 0, 0), 53.241), ((0, 0, 255), 32.297),
     ((255, 255, 255), 100.0), ((0, 0, 0), 0.0)],
)  # fmt: skip
def test_lightness_is_cie_lstar_of_srgb(rgb, expected):
    """Published CIELAB L* (D65) of sRGB colours (e.g. mid grey 53.59, pure red 53.24)."""
    assert lightness(np.array(rgb)) == pytest.approx(expected, abs=0.01)


def test_skin_brightness_is_the_mean_lstar_of_skin_pixels_only():
    labels = np.zeros((10, 10), np.uint8)
    labels[:, :4] = C["skin"]
    labels[:, 4:] = C["hair"]
    image = np.zeros((10, 10, 3), np.uint8)
    image[:5, :4] = 255  # half the skin white, half black
    image[:, 4:] = 200  # bright hair: not skin, not counted
    # the mean of the pixels' L* (50), not the L* of their mean colour (127.5 grey: 53.4)
    assert skin_brightness(image, labels) == pytest.approx(50.0)
    assert math.isnan(skin_brightness(image, np.zeros_like(labels)))


def test_face_area_counts_face_parts_over_all_pixels():
    labels = np.zeros((10, 10), np.uint8)
    labels[0, :] = C["hair"]  # 10 hair: not face
    labels[1, :] = C["skin"]
    labels[2, :4] = C["eyes"]
    labels[2, 4:6] = C["brows"]
    labels[3, :5] = C["nose"]
    labels[3, 5:] = C["mouth"]
    assert face_area(labels) == pytest.approx(26 / 100)


EYE_ROW, CHIN_ROW, LEFT, RIGHT = 70, 150, 60, 140  # skin spans columns 60..139 (80 px)


def _face_mask(hair_above_eyes: bool) -> np.ndarray:
    """A 200 px face: skin from the eye line (row 70) to the chin (row 150), 80 px wide, two
    eyes centred on row 70; optionally hair over every pixel above the eye line."""
    lab = np.zeros((200, 200), np.uint8)
    lab[EYE_ROW : CHIN_ROW + 1, LEFT:RIGHT] = C["skin"]
    if hair_above_eyes:
        lab[:EYE_ROW] = C["hair"]
    lab[EYE_ROW - 1 : EYE_ROW + 2, 75:85] = C["eyes"]
    lab[EYE_ROW - 1 : EYE_ROW + 2, 115:125] = C["eyes"]
    return lab


def test_hair_over_face_is_the_share_of_the_oval_and_forehead_under_hair():
    assert hair_over_face(_face_mask(False)) == 0.0
    # hair over the whole forehead: F is the skin's rectangle (80 x 81 pixels; chin depth
    # c = 80 below the eye line) under a half ellipse of semi-axes a (half the width between
    # the outer pixel centres) and 0.75 c, so the share is the half ellipse's area over F's
    a, c = (RIGHT - 1 - LEFT) / 2, CHIN_ROW - EYE_ROW
    cap = math.pi * a * 0.75 * c / 2
    expected = cap / (cap + (RIGHT - LEFT) * (c + 1))
    full = _face_mask(True)
    assert hair_over_face(full) == pytest.approx(expected, abs=0.01)
    # hair beside the face (below the eye line, outside the jaw) is not over it
    beside = full.copy()
    beside[EYE_ROW + 5 :, : LEFT - 2] = C["hair"]
    beside[EYE_ROW + 5 :, RIGHT + 2 :] = C["hair"]
    assert hair_over_face(beside) == pytest.approx(hair_over_face(full), abs=1e-9)
    # the frame follows the eyes: the face turned by 12 degrees, or at half size, gives the
    # same share
    turn = cv2.getRotationMatrix2D((100.0, 100.0), 12.0, 1.0)
    turned = cv2.warpAffine(full, turn, (200, 200), flags=cv2.INTER_NEAREST)
    assert hair_over_face(turned) == pytest.approx(expected, abs=0.015)
    half = cv2.resize(full, (100, 100), interpolation=cv2.INTER_NEAREST)
    assert hair_over_face(half) == pytest.approx(expected, abs=0.02)


def test_hair_over_face_needs_eyes_or_brows():
    lab = _face_mask(True)
    lab[lab == C["eyes"]] = C["skin"]
    assert math.isnan(hair_over_face(lab))
    lab[EYE_ROW - 1 : EYE_ROW + 2, 75:85] = C["brows"]  # brows stand in for the eyes
    lab[EYE_ROW - 1 : EYE_ROW + 2, 115:125] = C["brows"]
    assert 0.3 < hair_over_face(lab) < 0.45


# -- the generator's knob and its parameters -----------------------------------------------


def test_fringe_knob_values_and_mistakes():
    assert parse_fringe("A_F=0.8") == ("A_F", 0.8)
    with pytest.raises(ValueError, match="must lie in"):
        parse_fringe("A_F=1.5")
    with pytest.raises(ValueError, match="unknown fringe cell 'C_F'"):
        SynthConfig(n=4, fringe={"C_F": 0.5})
    with pytest.raises(ValueError, match="fringe probability of A_F"):
        SynthConfig(n=4, fringe={"A_F": 2})  # a TOML value, not through the flag's parser
    assert SynthConfig(n=4).fringe == {}


def test_the_fringe_knob_changes_only_the_fringe():
    """Same seed with and without the knob: faces outside the fringe cell are identical; in
    it, labels change only to hair, and every changed pixel lies at hair (1 px of
    anti-aliasing allowed) and above the eyes."""
    plain = SynthConfig(n=24, size=48, seed=11)
    knob = SynthConfig(n=24, size=48, seed=11, fringe={"A_F": 1.0})
    for slot in assign_slots(plain)[:12]:
        im0, lab0, row0 = render_slot(plain, slot)
        im1, lab1, row1 = render_slot(knob, slot)
        if f"{slot.group}_{slot.label[0].upper()}" != "A_F":
            assert np.array_equal(im0, im1) and np.array_equal(lab0, lab1)
            assert not row1["long_fringe"] and row1["long_fringe_reach"] == 0
            continue
        assert row1["long_fringe"] and 0.7 <= row1["long_fringe_reach"] <= 1.0
        assert not row0["long_fringe"]
        new_hair = (lab1 == C["hair"]) & (lab0 != C["hair"])
        assert new_hair.sum() > 20
        hair = (lab1 == C["hair"]).astype(np.uint8)
        near = cv2.dilate(hair, np.ones((3, 3), np.uint8)) > 0
        changed = (im0 != im1).any(axis=2) | (lab0 != lab1)
        assert not (changed & ~near).any()
        assert changed[lab1.shape[0] // 2 + 4 :].sum() == 0  # nothing below the eyes
        assert (lab1[lab0 != lab1] == C["hair"]).all()


@pytest.fixture(scope="module")
def fringe_world(tmp_path_factory) -> pd.DataFrame:
    """200 faces at 56 px, both groups over the whole tone range (so brightness is no proxy
    for the group), a long fringe on 80% of A_F: the manifest with the measured attributes
    and the cell of every face."""
    out = tmp_path_factory.mktemp("fringe_world")
    cfg = SynthConfig(n=200, size=56, seed=5, fringe={"A_F": 0.8},
                      groups={"A": (0.0, 1.0), "B": (0.0, 1.0)})  # fmt: skip
    generate(cfg, out, workers=0)
    m = read_manifest(out / "manifest.csv")
    att = measure_files([m.abspath(p) for p in m.df["path"]],
                        [m.abspath(p) for p in m.df["mask"]])  # fmt: skip
    assert (att["reason"] == "").all()
    df = pd.concat([m.df, att], axis=1)
    df["cell"] = cell_column(df, CLASSES)
    df["long_fringe"] = df["long_fringe"].astype(str) == "True"
    return df


def test_attributes_track_the_generators_parameters(fringe_world):
    df = fringe_world
    # skin brightness: darker skin tone, lower L*
    assert spearmanr(df["tone"].astype(float), df["skin_brightness"])[0] < -0.9
    # hair over the face: the long fringe, how far it reaches, and how low the hairline is
    fringe = df["long_fringe"].to_numpy()
    assert 0.6 < fringe[df["cell"] == "A_F"].mean() < 0.95 and not fringe[df["cell"] != "A_F"].any()
    hair = df["hair_over_face"].to_numpy()
    auc = mannwhitneyu(hair[fringe], hair[~fringe]).statistic / (fringe.sum() * (~fringe).sum())
    assert auc > 0.97
    reach = df["long_fringe_reach"].astype(float).to_numpy()
    assert spearmanr(reach[fringe], hair[fringe])[0] > 0.8
    bare = ~fringe & (df["fringe"] == "none").to_numpy()  # no fringe of any kind
    assert bare.sum() > 30
    assert spearmanr(df["hairline_height"].astype(float)[bare], hair[bare])[0] < -0.6
    # the fringe hides face: a lower visible face area
    area = df["face_area"].to_numpy()
    assert area[fringe].mean() < area[~fringe].mean() - 0.03


# -- the regression and its average marginal effects ---------------------------------------


def _hand_ames(p: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """AMEs of a cells-only model from each cell's fitted P(correct): p_k minus the rest's
    mix of cells."""
    out = []
    for k in range(len(p)):
        w = np.delete(counts, k)
        out.append(p[k] - np.delete(p, k) @ w / w.sum())
    return np.array(out)


def test_firth_without_attributes_adds_half_to_each_cells_counts():
    """Firth on cells alone fits (k + 1/2) / (n + 1) per cell, finite for a cell that is
    all right (where the unpenalized maximum is at infinity)."""
    cells = np.repeat([0, 1, 2], [10, 12, 8])
    y = np.r_[np.ones(10), np.ones(7), np.zeros(5), np.ones(2), np.zeros(6)]
    x = design(cells, 3)
    beta, ok = fit(x, y, penalty="firth")
    assert ok.all()
    p = np.array([10.5 / 11, 7.5 / 13, 2.5 / 9])
    hand = _hand_ames(p, np.array([10, 12, 8]))
    np.testing.assert_allclose(cell_ames(beta, x, cells, 3)[0], hand, atol=1e-7)


def _tiny():
    rng = np.random.default_rng(5)
    cells = np.repeat([0, 1, 2], 20)
    z = rng.normal(size=(60, 1))
    y = (rng.random(60) < expit(0.5 - 0.8 * (cells == 2) + 0.9 * z[:, 0])).astype(float)
    return cells, z, y


def _ame_by_hand(beta: np.ndarray, cells: np.ndarray, z: np.ndarray) -> np.ndarray:
    counts = np.bincount(cells)
    shift = np.r_[0.0, beta[1:3]]
    p = np.array([expit(beta[0] + shift[k] + z[:, 0] * beta[3]).mean() for k in range(3)])
    return _hand_ames(p, counts)


def test_ridge_near_zero_gives_the_unpenalized_maximum_likelihood_ames():
    cells, z, y = _tiny()
    x = design(cells, 3, z)

    def nll(b):
        eta = x @ b
        return -(y * eta - np.logaddexp(0, eta)).sum()

    best = minimize(nll, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
    beta, ok = fit(x, y, penalty="ridge", ridge=1e-10)
    assert ok.all()
    np.testing.assert_allclose(cell_ames(beta, x, cells, 3)[0], _ame_by_hand(best, cells, z),
                               atol=1e-5)  # fmt: skip
    # unadjusted and unpenalized, an AME is the cell's accuracy minus the rest's
    x0 = design(cells, 3)
    b0, _ = fit(x0, y, penalty="ridge", ridge=1e-10)
    raw = [y[cells == k].mean() - y[cells != k].mean() for k in range(3)]
    np.testing.assert_allclose(cell_ames(b0, x0, cells, 3)[0], raw, atol=1e-6)


def test_firth_maximizes_the_jeffreys_penalized_likelihood():
    cells, z, y = _tiny()
    x = design(cells, 3, z)

    def penalized(b):  # -(l(b) + log det I(b) / 2), by hand
        eta = x @ b
        p = expit(eta)
        info = x.T @ (x * (p * (1 - p))[:, None])
        return -((y * eta - np.logaddexp(0, eta)).sum() + 0.5 * np.linalg.slogdet(info)[1])

    best = minimize(penalized, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
    beta, ok = fit(x, y, penalty="firth")
    assert ok.all()
    np.testing.assert_allclose(beta[0], best, atol=1e-4)
    np.testing.assert_allclose(cell_ames(beta, x, cells, 3)[0], _ame_by_hand(best, cells, z),
                               atol=1e-5)  # fmt: skip


def test_frequency_weights_are_resampled_rows():
    """A bootstrap draw within cells, as weights, equals the fit on the rows repeated."""
    cells, z, y = _tiny()
    x = design(cells, 3, z)
    rng = np.random.default_rng(1)
    m = np.concatenate([rng.multinomial(20, np.full(20, 1 / 20)) for _ in range(3)])
    rows = np.repeat(np.arange(60), m)
    b_w, _ = fit(x, y, m[None].astype(float))
    b_r, _ = fit(x[rows], y[rows])
    np.testing.assert_allclose(b_w, b_r, atol=1e-7)
    np.testing.assert_allclose(cell_ames(b_w, x, cells, 3, m[None].astype(float)),
                               cell_ames(b_r, x[rows], cells[rows], 3), atol=1e-7)  # fmt: skip


# -- the gap with and without the attributes ------------------------------------------------


def _af_gap(df: pd.DataFrame, correct: np.ndarray) -> pd.Series:
    per = df[["cell", *ATTRIBUTES]].assign(correct=correct)
    gaps = cell_gaps(per, list(ATTRIBUTES), n_boot=400, seed=0)
    return gaps.set_index("cell").loc["A_F"]


def test_the_adjusted_gap_shrinks_when_errors_come_from_hair_over_the_face(fringe_world):
    """Faces with a long fringe are wrong 90% of the time, others 5%: A_F's gap shrinks
    once the attributes are in the model, with an interval of the change above zero."""
    fringe = fringe_world["long_fringe"].to_numpy()
    rng = np.random.default_rng(0)
    g = _af_gap(fringe_world, rng.random(len(fringe)) < np.where(fringe, 0.1, 0.95))
    assert g["gap"] < -0.4 and g["ame"] < -0.4
    assert g["change"] > 0.15 and g["change_low"] > 0 and g["change_excludes_zero"]
    assert g["ame_adjusted"] > g["ame"] + 0.15


def test_the_adjusted_gap_stays_when_errors_do_not_come_from_hair(fringe_world):
    """A_F as often wrong as above (27%), but at random within the cell: the change's
    interval includes zero."""
    a_f = (fringe_world["cell"] == "A_F").to_numpy()
    rng = np.random.default_rng(0)
    g = _af_gap(fringe_world, rng.random(len(a_f)) < np.where(a_f, 0.27, 0.95))
    assert g["gap"] < -0.4
    assert g["change_low"] < 0 < g["change_high"] and not g["change_excludes_zero"]
    assert abs(g["change"]) < 0.1


def test_the_matched_subset_balances_the_strata():
    """One attribute, two bins. The cell: 10 low (right), 30 high (wrong); the rest: 30 low
    (right), 10 high (wrong). Matched 10 + 10 per side, both half right: gap 0 (raw -0.5)."""
    x = np.r_[np.zeros(10), np.ones(30), np.zeros(30), np.ones(10)]
    per = pd.DataFrame({"cell": ["A_F"] * 40 + ["A_M"] * 40, "x": x, "correct": x == 0})
    got = matched_gap(per, ["x"], "A_F", 2, seed=0)
    assert got["matched_n"] == 20 and got["matched_gap"] == 0.0
    assert got["matched_gap_low"] < 0 < got["matched_gap_high"]
    raw = per.groupby("cell")["correct"].mean()
    assert raw["A_F"] - raw["A_M"] == -0.5


def test_accuracy_per_bin_counts_by_hand():
    per = pd.DataFrame({"cell": ["A_F", "A_M"] * 4, "a": np.arange(1.0, 9.0),
                        "correct": [1, 1, 0, 1, 0, 0, 1, 0]}).astype({"correct": bool})  # fmt: skip
    t = accuracy_bins(per, ["a"], bins=2).set_index(["bin", "selection"])
    assert (t.loc[(1, "all"), "n"], t.loc[(1, "all"), "correct"]) == (4, 3)  # a = 1..4
    assert (t.loc[(2, "all"), "n"], t.loc[(2, "all"), "correct"]) == (4, 1)  # a = 5..8
    assert (t.loc[(1, "A_F"), "n"], t.loc[(1, "A_F"), "correct"]) == (2, 1)  # a = 1, 3
    assert (t.loc[(2, "A_M"), "n"], t.loc[(2, "A_M"), "correct"]) == (2, 0)  # a = 6, 8
    r = t.loc[(1, "all")]
    assert r["ci_low"] < 0.75 < r["ci_high"] and r["accuracy"] == 0.75


# -- the command -------------------------------------------------------------------------


def test_cli_writes_one_row_per_test_image(brows_reader_run, brows_world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(brows_reader_run, run)
    assert main(["attributes", "--run", str(run)]) == 2  # not evaluated yet
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "saliency evaluate" in err and "Traceback" not in err
    assert not (run / "attributes").exists()
    assert main(["evaluate", "--run", str(run), "--workers", "0"]) == 0
    argv = ["attributes", "--run", str(run), "--workers", "0", "--bootstrap", "50"]
    assert main(argv) == 0
    assert "A_F" in capsys.readouterr().out
    pred = pd.read_csv(run / "eval" / "test" / "predictions.csv", keep_default_na=False)
    per = pd.read_csv(run / "attributes" / "per_image.csv", keep_default_na=False)
    assert len(per) == len(pred) == 48 and list(per["path"]) == list(pred["path"])
    assert set(per["cell"]) == {"A_F", "A_M", "B_F", "B_M"}
    assert (per["correct"] == pred["correct"]).all()
    # the fixture's skin is grey 175 with a little noise: L* about 71.5
    assert abs(per["skin_brightness"].mean() - 71.5) < 1.5
    face = np.isin(np.asarray(cv2.imread(str(brows_world / "mask.png"), 0)), [1, 2, 3, 4, 5])
    assert np.allclose(per["face_area"], face.mean())
    gaps = pd.read_csv(run / "attributes" / "gaps.csv")
    assert set(gaps["cell"]) == set(per["cell"])
    for name in ("summary", "bins", "skipped"):
        assert (run / "attributes" / f"{name}.csv").is_file()
    assert (run / "attributes" / "attributes.png").is_file()
