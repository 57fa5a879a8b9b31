"""Interval statistics and evaluation metrics against hand-computed and published values."""

import math

import numpy as np
import pandas as pd
import pytest

from saliency.analysis.metrics import calibration, evaluation_metrics, group_table, roc_auc
from saliency.analysis.stats import newcombe_difference, wilson


def test_wilson_matches_published_values():
    # Newcombe (1998), Table I: 81/263 -> 0.2553 to 0.3662; 15/148 -> 0.0624 to 0.1605;
    # 0/10 -> 0 to 0.2775
    lo, hi = wilson(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    lo, hi = wilson(15, 148)
    assert (round(lo, 4), round(hi, 4)) == (0.0624, 0.1605)
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and round(hi, 4) == 0.2775
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_newcombe_hybrid_score_matches_published_example():
    # Newcombe (1998), difference 56/70 - 48/80, method 10: 0.0524 to 0.3339
    d, lo, hi = newcombe_difference(56, 70, 48, 80)
    assert round(d, 4) == 0.2 and (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)


def _pred(rows):
    df = pd.DataFrame(rows, columns=["label", "group", "prob_male"])
    df["prob_female"] = 1 - df["prob_male"]
    df["pred"] = np.where(df["prob_male"] > 0.5, "male", "female")
    df["correct"] = df["pred"] == df["label"]
    return df


def test_metrics_by_hand_with_an_empty_cell_and_a_one_class_subgroup():
    classes = ["female", "male"]
    df = _pred(
        [
            ("female", "AA", 0.9),  # wrong
            ("female", "AA", 0.2),
            ("male", "AA", 0.8),
            ("male", "AA", 0.4),  # wrong
            ("male", "AA", 0.7),
            ("male", "C", 0.6),  # group C has males only: C_F is empty
            ("male", "C", 0.3),  # wrong
        ]
    )
    m = evaluation_metrics(df, classes)
    assert m["accuracy"]["all"]["value"] == pytest.approx(4 / 7)
    assert m["accuracy"]["AA_F"]["value"] == pytest.approx(0.5)
    assert m["accuracy"]["C_F"]["n"] == 0 and m["accuracy"]["C_F"]["value"] is None
    assert m["accuracy"]["C_F"]["ci"] == [None, None]
    # AA_F: 1 of 2 females missed; 1 of 3 AA males predicted female
    assert m["cells"]["AA_F"]["fnr"]["value"] == pytest.approx(0.5)
    assert m["cells"]["AA_F"]["fpr"]["value"] == pytest.approx(1 / 3)
    assert m["roc_auc"]["by_group"]["C"] is None  # one class only
    # AA: positives (male) 0.8, 0.4, 0.7 vs negatives 0.9, 0.2: 3 of 6 pairs ordered
    assert m["roc_auc"]["by_group"]["AA"] == pytest.approx(3 / 6)
    assert m["per_class"]["male"]["precision"] == pytest.approx(3 / 4)
    assert m["per_class"]["male"]["recall"] == pytest.approx(3 / 5)
    assert m["confusion"]["rows_true_cols_pred"] == [[1, 1], [2, 3]]
    assert m["hardest_cell"] in ("AA_F", "C_M")
    gap = next(g for g in m["gaps"] if g["a"] == "AA_F" and g["b"] == "AA_M")
    assert gap["difference"] == pytest.approx(0.5 - 2 / 3)
    assert not any(g["a"] == "C_F" or g["b"] == "C_F" for g in m["gaps"])
    expected_loss = -np.mean(np.log([0.1, 0.8, 0.8, 0.4, 0.7, 0.6, 0.3]))
    assert m["loss"] == pytest.approx(expected_loss)


def test_group_table_uses_the_reference_order():
    df = _pred([("female", "C", 0.2), ("male", "AA", 0.9), ("female", "AA", 0.6)])
    names = group_table(df, ["female", "male"])["selection"].tolist()
    assert names == ["all", "female", "male", "AA", "C", "AA_F", "AA_M", "C_F", "C_M"]


def test_calibration_error_by_hand():
    conf = np.array([0.95, 0.95, 0.65, 0.65])
    correct = np.array([True, True, True, False])
    cal = calibration(conf, correct, n_bins=10)
    # bins: 0.95 -> acc 1.0 (gap 0.05), 0.65 -> acc 0.5 (gap 0.15); ECE = 0.5*0.05 + 0.5*0.15
    assert cal["ece"] == pytest.approx(0.10)
    assert [b["n"] for b in cal["bins"]] == [2, 2]


def test_auc_with_ties():
    assert roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == 0.5


def test_region_shares_by_hand():
    from saliency.analysis.share.mass import region_shares

    labels = np.zeros((2, 4), np.uint8)
    labels[0, :2] = 2  # brows: 2 of 8 pixels
    labels[1, :] = 3  # eyes: 4 of 8 pixels
    m = np.zeros((2, 4))
    m[0, 0] = 3.0  # brows get 3 of the 4 units of positive mass
    m[1, 0] = 1.0
    m[1, 1] = -5.0  # negative attribution is not counted
    s = region_shares(m, labels)
    assert s["brows"] == {"share": 0.75, "area": 0.25, "enrichment": 3.0}
    assert s["eyes"]["share"] == 0.25 and s["eyes"]["enrichment"] == 0.5
    assert s["nose"]["area"] == 0.0 and math.isnan(s["nose"]["enrichment"])


def test_region_shares_of_an_average_map_use_region_frequencies():
    from saliency.analysis.share.mass import region_shares

    a = np.zeros((2, 4), np.uint8)
    a[0, :2] = 2  # face 1: brows on the first two pixels of row 0
    b = np.zeros((2, 4), np.uint8)
    b[0, :1] = 2  # face 2: brows on the first pixel only
    m = np.zeros((2, 4))
    m[0, 0], m[0, 1], m[1, 3] = 2.0, 1.0, 1.0
    s = region_shares(m, np.stack([a, b]))
    # brows frequency: pixel (0,0) 1.0, pixel (0,1) 0.5 -> mass 2 + 0.5 = 2.5 of 4
    assert s["brows"]["share"] == 0.625 and s["brows"]["area"] == 1.5 / 8
    np.testing.assert_equal(region_shares(m, np.stack([a, a])), region_shares(m, a))


def test_mcnemar_exact_against_the_binomial_test():
    from scipy.stats import binomtest

    from saliency.analysis.stats import mcnemar_exact

    assert mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 1024)  # by hand: 0.021484375
    for b, c in ((0, 0), (5, 5), (3, 12), (40, 17), (0, 7)):
        expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_holm_by_hand():
    from saliency.analysis.stats import holm

    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    out = holm([0.2, np.nan, 0.01])  # NaN is not part of the family of two
    np.testing.assert_allclose(out[[0, 2]], [0.2, 0.02])
    assert np.isnan(out[1])
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])  # 0.6 * 2 capped at 1


def test_bootstrap_interval_matches_the_normal_theory_and_is_reproducible():
    from saliency.analysis.stats import bootstrap

    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 1.0, 2000)
    est, lo, hi = bootstrap(x, seed=1)
    assert est == pytest.approx(x.mean())
    half = 1.96 * x.std() / np.sqrt(len(x))
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.1)
    assert bootstrap(x, seed=1) == bootstrap(x, seed=1)  # same seed, same interval
    est2, lo2, hi2 = bootstrap(np.stack([x, 2 * x], axis=1), seed=1)  # columns at once
    np.testing.assert_allclose([est2[1], lo2[1], hi2[1]], [2 * est, 2 * lo, 2 * hi])
    empty = bootstrap(np.empty((0, 3)))
    assert all(np.isnan(a).all() and a.shape == (3,) for a in empty)


def _predictions(labels, preds):
    df = pd.DataFrame({"path": [f"{i}.png" for i in range(len(labels))], "label": labels})
    df["group"], df["pred"] = "A", preds
    df["correct"] = df["pred"] == df["label"]
    df["prob_male"] = [0.9 if p == "male" else 0.1 for p in preds]
    df["prob_female"] = 1 - df["prob_male"]
    return df


def test_chance_is_the_majority_share_and_judged_by_the_accuracy_interval():
    from saliency.analysis.metrics import chance_message, evaluation_metrics

    classes = ["female", "male"]
    labels = ["female"] * 30 + ["male"] * 10
    constant = evaluation_metrics(_predictions(labels, ["female"] * 40), classes)
    assert constant["chance"] == {"level": 0.75, "at_chance": True}  # 75% by saying "female"
    message = chance_message(constant, "test")
    assert "at chance on test" in message and "75.0%" in message
    good = evaluation_metrics(_predictions(labels, labels), classes)
    assert good["chance"]["at_chance"] is False and chance_message(good, "test") is None
    # one class present: a constant answer is perfect, so chance cannot be judged
    one = evaluation_metrics(_predictions(["female"] * 20, ["female"] * 20), classes)
    assert one["chance"]["at_chance"] is None and chance_message(one, "test") is None


def test_run_chance_warning_reads_the_evaluation_then_the_training_log(tmp_path):
    import json

    from saliency.analysis.metrics import run_chance_warning

    log = pd.DataFrame({"epoch": [1, 2, 3], "val_at_chance": [None, True, True]})
    log.to_csv(tmp_path / "train_log.csv", index=False)
    assert "never left chance" in run_chance_warning(tmp_path)  # rows before the column: unknown
    log.assign(val_at_chance=[None, True, False]).to_csv(tmp_path / "train_log.csv", index=False)
    assert run_chance_warning(tmp_path) is None
    (tmp_path / "eval" / "test").mkdir(parents=True)
    metrics = {"chance": {"level": 0.5, "at_chance": True},
               "accuracy": {"all": {"value": 0.52, "ci": [0.4, 0.63]}}}  # fmt: skip
    (tmp_path / "eval" / "test" / "metrics.json").write_text(json.dumps(metrics))
    assert "at chance on test: accuracy 52.0% [40.0%, 63.0%]" in run_chance_warning(tmp_path)
