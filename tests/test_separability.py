"""Decidability d' and error rates at the operating threshold (issue 35, items 1 and 2):
the formulas by hand, the bootstrap interval's coverage, the paired change, and the tables
and figures that evaluate, ablate and the figures stage make of them."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest

from saliency.analysis.separability import dprime, dprime_interval, paired_dprime
from saliency.analysis.stats import newcombe_difference
from saliency.analysis.thresholds import error_counts, error_curves, threshold_rows
from saliency.binomial import wilson

# ---- d' --------------------------------------------------------------------------------


def test_dprime_is_the_hand_formula_on_fixed_scores():
    # class 0: mean 2.5, sample variance 5/3; class 1: mean 6, sample variance 4
    s0, s1 = [1.0, 2.0, 3.0, 4.0], [4.0, 6.0, 8.0]
    assert dprime(s0, s1) == pytest.approx((6 - 2.5) / math.sqrt((5 / 3 + 4) / 2), rel=1e-12)
    assert dprime(s1, s0) == pytest.approx(-dprime(s0, s1), rel=1e-12)  # the sign: 1 over 0
    # a unit-free statistic: a positive affine change of the scores leaves it as it is
    a = 3.0 * np.array(s0) - 7.0, 3.0 * np.array(s1) - 7.0
    assert dprime(*a) == pytest.approx(dprime(s0, s1), rel=1e-12)
    # equal spreads: d' is the distance of the means in standard deviations
    assert dprime([-1.0, 1.0], [3.0, 5.0]) == pytest.approx(4 / math.sqrt(2), rel=1e-12)
    assert math.isnan(dprime([1.0], [2.0, 3.0]))  # one score has no spread
    assert math.isnan(dprime([1.0, 1.0], [2.0, 2.0]))  # no spread in either class


def test_dprime_interval_covers_the_true_value_at_about_the_nominal_rate():
    """200 normal data sets (60 images per class, unit spread, true d' 1.5): the 95%
    stratified percentile interval held the truth in 189 of them (0.945). Measured before
    writing the test: 0.945 over 2000 such data sets (blocks of 200: 0.92 to 0.965); the
    percentile interval of d' runs slightly short at small n (0.93 at 50 per class)."""
    rng, true, hits = np.random.default_rng(123), 1.5, 0
    for k in range(200):
        s0, s1 = rng.normal(0, 1, 60), rng.normal(true, 1, 60)
        est, low, high = dprime_interval(s0, s1, n_boot=500, seed=k)
        assert low <= est <= high
        hits += low <= true <= high
    assert 0.90 <= hits / 200 <= 0.98


def test_the_interval_resamples_within_each_class():
    """Stratified: every resample keeps both classes' sizes, so a data set with one image
    more in a class than needed for a variance never yields a draw without a class."""
    est, low, high = dprime_interval([0.0, 1.0, 0.5], [3.0, 4.0, 3.5, 5.0], n_boot=300)
    assert np.isfinite([est, low, high]).all() and low < est < high


def test_an_ablation_that_changes_nothing_changes_d_prime_by_exactly_zero():
    rng = np.random.default_rng(0)
    positive = np.arange(40) % 2 == 1
    scores = rng.normal(0, 1, 40) + 2 * positive
    got = paired_dprime(scores, scores.copy(), positive, n_boot=500)
    assert got["dprime_before"] == got["dprime_after"]
    assert got["dprime_before"] == pytest.approx(dprime(scores[~positive], scores[positive]))
    assert got["dprime_change"] == got["dprime_change_low"] == got["dprime_change_high"] == 0.0
    assert got["dprime_before_low"] < got["dprime_before"] < got["dprime_before_high"]


def test_the_paired_change_sees_a_shift_that_the_unpaired_intervals_overlap():
    """Class 1's scores move 0.4 toward class 0 after the 'ablation': the per-image pairs
    make the change's interval exclude 0 although the two d' intervals overlap."""
    rng = np.random.default_rng(1)
    positive = np.arange(80) % 2 == 1
    before = rng.normal(0, 1, 80) + 2 * positive
    after = before - 0.4 * positive
    got = paired_dprime(before, after, positive, n_boot=1000)
    hand = dprime(after[~positive], after[positive]) - dprime(before[~positive], before[positive])
    assert got["dprime_change"] == pytest.approx(hand, rel=1e-12) and hand < 0
    assert got["dprime_change_high"] < 0
    assert got["dprime_after_high"] > got["dprime_before_low"]  # the two intervals overlap


def _hand_per(logit_before, logit_after, male) -> pd.DataFrame:
    """Per-image ablation rows of one region as ablate writes them, from male logits."""
    male = np.asarray(male, bool)
    sign = np.where(male, 1.0, -1.0)
    per = pd.DataFrame({"path": [f"{i}.png" for i in range(len(male))],
                        "label": np.where(male, "male", "female"), "group": "A",
                        "region": "brows", "region_area": 10})  # fmt: skip
    for when, z in (("before", np.asarray(logit_before)), ("after", np.asarray(logit_after))):
        per[f"score_{when}"] = sign * z  # the true class's score
        per[f"prob_{when}"] = 1 / (1 + np.exp(-sign * z))  # and its probability
        per[f"pred_{when}"] = np.where(z > 0, "male", "female")
        per[f"correct_{when}"] = per[f"pred_{when}"] == per["label"]
        per[f"logit_{when}"] = z
    return per


def test_the_ablation_summary_takes_d_prime_on_the_male_logit():
    """d' is on the log-odds of the second class, not on the true class's score (whose
    class means are both positive for a good model); rows stored before the logit column
    existed get it back from the true class's probability."""
    from saliency.analysis.ablation.summary import summarize

    male = np.arange(10) % 2 == 1
    before = np.array([-3.0, 2.5, -2.0, 3.5, -1.0, 1.0, -2.5, 2.0, 0.5, 3.0])
    after = before * 0.5 + np.where(male, -0.5, 0.25)
    per = _hand_per(before, after, male)
    s = summarize(per, ["female", "male"], n_boot=200).set_index("selection")
    hand_before = _hand_dprime(before, male)
    assert s.loc["all", "dprime_before"] == pytest.approx(hand_before, rel=1e-9)
    assert s.loc["A", "dprime_after"] == pytest.approx(_hand_dprime(after, male), rel=1e-9)
    assert s.loc["all", "dprime_change"] == pytest.approx(
        _hand_dprime(after, male) - hand_before, rel=1e-9)  # fmt: skip
    old = summarize(per.drop(columns=["logit_before", "logit_after"]), ["female", "male"],
                    n_boot=200).set_index("selection")  # fmt: skip
    assert old.loc["all", "dprime_before"] == pytest.approx(hand_before, rel=1e-9)


def test_ablate_writes_the_male_log_odds_of_one_and_two_logit_models():
    import torch

    from saliency.stages.ablate import _per_variant

    true = torch.tensor([0, 1])  # female, male
    for z, odds in ((torch.tensor([[1.5], [-0.5], [-2.0], [0.25]]), [1.5, -0.5, -2.0, 0.25]),
                    (torch.tensor([[0.5, 2.0], [1.0, 0.0], [3.0, -1.0], [0.0, 0.5]]),
                     [1.5, -1.0, -4.0, 0.5])):  # fmt: skip
        # two images, each: original then one region
        per = _per_variant([z], [torch.tensor([0, 1])], [torch.tensor([[4], [4]])], true, ["eyes"])
        np.testing.assert_allclose(per["logit_before"], [odds[0], odds[2]])
        np.testing.assert_allclose(per["logit_after"], [odds[1], odds[3]])


# ---- error rates at a threshold -------------------------------------------------------

S0 = [-2.0, -0.5, 0.0, 0.3, 1.5]  # class 0: an error when its score is above the threshold
S1 = [-1.0, 0.0, 0.2, 2.5]  # class 1: an error when its score is at or below it


def test_threshold_error_counts_are_the_counts_by_hand():
    scores, positive = np.array(S0 + S1), np.array([False] * 5 + [True] * 4)
    e0, n0, e1, n1 = error_counts(scores, positive, [-1.0, 0.0, 1.0, 3.0])
    assert (n0, n1) == (5, 4)
    assert list(e0) == [4, 2, 1, 0]  # above -1: -0.5, 0, 0.3, 1.5; above 0: 0.3, 1.5; ...
    assert list(e1) == [1, 2, 3, 4]  # at or below -1: -1; at or below 0: -1, 0; ...


def test_the_operating_threshold_is_the_models_own_decision_rule():
    """At logit 0 the errors are exactly the images the model's prediction gets wrong (a
    logit of exactly 0 is called class 0, as :func:`saliency.models.outputs.predicted`)."""
    import torch

    from saliency.models import outputs

    scores, positive = np.array(S0 + S1), np.array([False] * 5 + [True] * 4)
    pred = outputs.predicted(torch.tensor(scores, dtype=torch.float32)[:, None]).numpy()
    e0, _, e1, _ = error_counts(scores, positive, 0.0)
    assert e0[0] == int(((pred == 1) & ~positive).sum()) == 2
    assert e1[0] == int(((pred == 0) & positive).sum()) == 2


def test_rates_per_group_carry_wilson_intervals_and_gaps_newcombe_intervals():
    scores = np.array(S0 + S1 + [-3.0, -2.0, 0.5, 1.0, 2.0, 3.0])
    positive = np.array([False] * 5 + [True] * 4 + [False] * 3 + [True] * 3)
    groups = np.array(["A"] * 9 + ["B"] * 6)
    cells = {("A", 0): "A_F", ("A", 1): "A_M", ("B", 0): "B_F", ("B", 1): "B_M"}
    rows = pd.DataFrame(threshold_rows(scores, positive, groups, ["female", "male"], cells, 1.0))
    rate = rows[rows["kind"] == "error_rate"].set_index("selection")
    # at threshold 1: A_F 1 of 5 (1.5), A_M 3 of 4 (-1, 0, 0.2), B_F 0 of 3, B_M 1 of 3 (1.0)
    # over all images: female 1 of 8, male 4 of 7
    for name, k, n in (("A_F", 1, 5), ("A_M", 3, 4), ("B_F", 0, 3), ("B_M", 1, 3),
                       ("female", 1, 8), ("male", 4, 7)):  # fmt: skip
        r = rate.loc[name]
        assert (r["errors"], r["n"], r["threshold"]) == (k, n, 1.0), name
        assert r["value"] == pytest.approx(k / n)
        assert (r["ci_low"], r["ci_high"]) == pytest.approx(wilson(k, n))
    gap = rows[rows["kind"] == "gap"].set_index("selection")
    assert set(gap.index) == {"A_F - B_F", "A_M - B_M"}
    assert tuple(gap.loc["A_M - B_M", ["value", "ci_low", "ci_high"]]) == pytest.approx(
        newcombe_difference(3, 4, 1, 3))  # fmt: skip
    # the curves agree with the table at the same threshold
    curves = error_curves(scores, positive, groups, [0.0, 1.0])
    assert list(curves[("A", 1)]["errors"]) == [2, 3] and curves[("B", 0)]["n"] == 3


# ---- the stages' tables and figures -----------------------------------------------------


@pytest.fixture(scope="module")
def scored(brows_reader_run, tmp_path_factory):
    """A copy of the hand-weighted brows reader's run, evaluated and ablated (brows, which
    the reader reads, and the mouth, which it ignores), with what evaluate printed."""
    import contextlib
    import io

    from saliency.cli import main

    run = tmp_path_factory.mktemp("separability") / "run"
    shutil.copytree(brows_reader_run, run, ignore=shutil.ignore_patterns(
        "saliency", "ablation", "share", "averages", "figures", "eval"))  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["evaluate", "--run", str(run), "--workers", "0"]) == 0
    regions = ["--region", "brows", "--region", "mouth"]
    assert main(["ablate", "--run", str(run), *regions, "--workers", "0"]) == 0
    return run, printed.getvalue()


def _hand_dprime(logit: np.ndarray, male: np.ndarray) -> float:
    a, b = logit[~male], logit[male]
    return (b.mean() - a.mean()) / math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)


def test_evaluate_writes_d_prime_per_group_by_the_formula(scored):
    run, printed = scored
    pred = pd.read_csv(run / "eval" / "test" / "predictions.csv", keep_default_na=False)
    sep = pd.read_csv(run / "eval" / "test" / "separability.csv").set_index("selection")
    assert list(sep.index) == ["all", "A", "B"]
    male = (pred["label"] == "male").to_numpy()
    for name in ("all", "A", "B"):
        keep = np.ones(len(pred), bool) if name == "all" else (pred["group"] == name).to_numpy()
        r = sep.loc[name]
        hand = _hand_dprime(pred["logit"].to_numpy(float)[keep], male[keep])
        assert r["dprime"] == pytest.approx(hand, rel=1e-6)  # the CSV holds float32 logits
        assert r["ci_low"] < r["dprime"] < r["ci_high"]
        assert (r["n_0"], r["n_1"]) == ((keep & ~male).sum(), (keep & male).sum())
    # B holds the reader's only errors (B_F's flipped women): its classes overlap more
    assert sep.loc["B", "dprime"] < sep.loc["A", "dprime"]
    assert any(line.split()[:2] == ["B", "d'"] for line in printed.splitlines())


def test_evaluate_writes_each_cells_error_rate_at_the_operating_threshold(scored, brows_world):
    run, printed = scored
    thr = pd.read_csv(run / "eval" / "test" / "threshold_errors.csv", keep_default_na=False)
    rate = thr[thr["kind"] == "error_rate"].set_index("selection")
    assert (rate["threshold"] == 0).all()
    # the world's construction: the reader errs on exactly the 4 flipped of B_F's 12 women
    manifest = pd.read_csv(brows_world / "manifest.csv", keep_default_na=False)
    assert (manifest["flipped"].astype(str) == "True").sum() == 4
    assert rate.loc["B_F", ["errors", "n"]].tolist() == [4, 12]
    assert (rate.drop(["B_F", "female"])["errors"] == 0).all()
    assert rate.loc["female", ["errors", "n"]].tolist() == [4, 24]
    assert tuple(rate.loc["B_F", ["ci_low", "ci_high"]]) == pytest.approx(wilson(4, 12))
    gap = thr[thr["kind"] == "gap"].set_index("selection")
    assert tuple(gap.loc["A_F - B_F", ["value", "ci_low", "ci_high"]]) == pytest.approx(
        newcombe_difference(0, 12, 4, 12))  # fmt: skip
    assert "B_F 33.3%" in printed


def test_ablation_tables_carry_d_prime_before_after_and_its_change(scored):
    run, _ = scored
    pred = pd.read_csv(run / "eval" / "test" / "predictions.csv", keep_default_na=False)
    logit = dict(zip(pred["path"], pred["logit"], strict=True))
    for region in ("brows", "mouth"):
        folder = run / "ablation" / f"{region}_blur_delete"
        per = pd.read_csv(folder / "per_image.csv", keep_default_na=False)
        # the male logit before is the one evaluate classified; the true class's score is it
        # signed by the class
        np.testing.assert_allclose(per["logit_before"], per["path"].map(logit), atol=1e-4)
        sign = np.where(per["label"] == "male", 1.0, -1.0)
        np.testing.assert_allclose(per["logit_after"], sign * per["score_after"], atol=1e-6)
        s = pd.read_csv(folder / "summary.csv").set_index("selection")
        male = (per["label"] == "male").to_numpy()
        for name in ("all", "A", "B"):
            keep = np.ones(len(per), bool) if name == "all" else (per["group"] == name).to_numpy()
            after = _hand_dprime(per["logit_after"].to_numpy(float)[keep], male[keep])
            assert s.loc[name, "dprime_after"] == pytest.approx(after, rel=1e-4)
            assert s.loc[name, "dprime_after_low"] < after < s.loc[name, "dprime_after_high"]
        assert s.loc[["female", "male", "A_F", "B_M"], "dprime_before"].isna().all()
    mouth = pd.read_csv(run / "ablation" / "mouth_blur_delete" / "summary.csv")
    mouth = mouth.set_index("selection").loc[["all", "A", "B"]]
    # the reader ignores the mouth: no change at all, and a point interval
    assert (mouth[["dprime_change", "dprime_change_low", "dprime_change_high"]] == 0).all().all()
    ranking = pd.read_csv(run / "ablation" / "ranking_blur_delete.csv").set_index("region")
    for col in ("dprime_before", "dprime_after", "dprime_change", "dprime_change_low",
                "dprime_change_high"):  # fmt: skip
        assert col in ranking.columns
    assert ranking.loc["mouth", "dprime_change"] == 0


def test_score_figure_puts_each_groups_d_prime_beside_its_histograms(scored):
    import matplotlib.pyplot as plt

    from saliency.stages.figures.regions import score_distributions
    from saliency.viz.style import PAPER_RC

    run, _ = scored
    with plt.rc_context(PAPER_RC):
        spec = score_distributions(run, ["female", "male"], 7.0)
    panels = [ax for ax in spec.figure.axes if not ax.patches]  # d' panels: no histograms
    assert len(panels) == 2  # one per region (brows, mouth)
    by_row = sorted(panels, key=lambda ax: -ax.get_position().y0)
    for region, ax in zip(("brows", "mouth"), by_row, strict=True):
        s = pd.read_csv(run / "ablation" / f"{region}_blur_delete" / "summary.csv")
        s = s.set_index("selection")
        labels = [t.get_text().split()[0] for t in ax.get_yticklabels()]
        assert labels == ["all", "A", "B"]
        # open markers: before, filled: after, at the summary's values, top to bottom
        before, after = [line for line in ax.lines if line.get_marker() == "o"]
        np.testing.assert_allclose(before.get_xdata(), s.loc[labels, "dprime_before"], rtol=1e-4)
        np.testing.assert_allclose(after.get_xdata(), s.loc[labels, "dprime_after"], rtol=1e-4)
        assert list(np.argsort(-before.get_ydata())) == [0, 1, 2]
    assert "d\u2032" in spec.caption
    plt.close(spec.figure)


def test_threshold_figure_draws_each_cells_error_rate_over_thresholds(scored):
    import matplotlib.pyplot as plt

    from saliency.stages.figures.thresholds import threshold_errors
    from saliency.viz.style import PAPER_RC

    run, _ = scored
    pred = pd.read_csv(run / "eval" / "test" / "predictions.csv", keep_default_na=False)
    with plt.rc_context(PAPER_RC):
        spec = threshold_errors(run, "test", 7.0)
    female, male, gaps = spec.figure.axes
    curves = {line.get_label().split(" (n")[0]: line for ax in (female, male, gaps)
              for line in ax.lines if not line.get_label().startswith("_")}  # fmt: skip
    assert set(curves) == {"all female", "A_F", "B_F", "all male", "A_M", "B_M",
                           "A_F \u2212 B_F", "A_M \u2212 B_M"}  # fmt: skip
    b_f = (pred["group"] == "B") & (pred["label"] == "female")
    t, y = curves["B_F"].get_xdata(), curves["B_F"].get_ydata()
    for at in (-2.0, 0.0, 1.0):  # B_F's women called male: their logit above the threshold
        k = int(np.argmin(np.abs(t - at)))
        assert t[k] == pytest.approx(at)
        assert y[k] == pytest.approx(100 * (pred.loc[b_f, "logit"] > at).mean())
    assert spec.n == len(pred)
    plt.close(spec.figure)
