"""Region ablation: exact locality on a toy model, identity cases, the summary table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from saliency.analysis.ablation.summary import ranking, summarize
from saliency.data.regions import REGION_CODES
from saliency.perturb.variants import ablated
from saliency.stages.ablate import AblationConfig, ablate_run


def face_labels(size: int = 128) -> np.ndarray:
    """A label map with eyes high and a mouth low, far apart, on skin."""
    labels = np.full((size, size), REGION_CODES["skin"], np.uint8)
    labels[40:50, 30:50] = labels[40:50, 78:98] = REGION_CODES["eyes"]
    labels[100:110, 45:83] = REGION_CODES["mouth"]
    return labels


def eyes_model(image: np.ndarray, labels: np.ndarray) -> float:
    """A toy model that reads only the eye pixels: their weighted sum."""
    w = (labels == REGION_CODES["eyes"]) * np.linspace(0.5, 1.5, labels.size).reshape(labels.shape)
    return float((image.astype(np.float64).sum(-1) * w).sum())


@pytest.mark.parametrize("fill", ["blur", "mean", "gray", "noise"])
def test_deleting_the_eyes_changes_a_toy_eyes_model_and_the_mouth_does_not(fill):
    rng = np.random.default_rng(12345)  # not the noise fill's seed, or noise = image
    image = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    labels = face_labels()
    before = eyes_model(image, labels)
    (eyes, mouth), areas = ablated(image, labels, ["eyes", "mouth"], fill, "delete")
    assert eyes_model(eyes, labels) != before
    assert eyes_model(mouth, labels) == before  # exact: the feather is truncated
    assert areas == [400, 380]
    (kept,), _ = ablated(image, labels, ["eyes"], fill, "keep")
    assert eyes_model(kept, labels) == before  # keep-only eyes keeps the output
    assert not np.array_equal(kept, image)  # while the rest was replaced


def test_deleting_skin_leaves_the_features_inside_it_untouched_unless_asked():
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    labels = face_labels(128)[::2, ::2].copy()
    labels[15:17, 15:25] = REGION_CODES["brows"]  # a 2 px brow, thinner than the feather
    (skin,), _ = ablated(image, labels, ["skin"], "blur", "delete")
    features = np.isin(labels, [REGION_CODES[r] for r in ("eyes", "brows", "mouth")])
    np.testing.assert_array_equal(skin[features], image[features])
    assert not np.array_equal(skin[~features], image[~features])
    (spilled,), _ = ablated(image, labels, ["skin"], "blur", "delete", protect=False)
    brows = labels == REGION_CODES["brows"]
    assert not np.array_equal(spilled[brows], image[brows])  # the reference recipe spills


@pytest.mark.parametrize("place", ["workers", "device"])
def test_keep_mode_with_an_all_ones_mask_reproduces_the_predictions_exactly(
    tiny_run, monkeypatch, place
):
    import saliency.perturb.fill_torch as fill_batch
    import saliency.perturb.variants as variants

    monkeypatch.setattr(variants, "fill_mask", lambda labels, region: np.ones(labels.shape))
    real = fill_batch.fill_masks_batch
    ones = lambda labels, regions: torch.ones_like(real(labels, regions))  # noqa: E731
    monkeypatch.setattr(fill_batch, "fill_masks_batch", ones)
    cfg = AblationConfig(split="test", regions=["eyes", "hair"], mode="keep", fill_on=place)
    per, skipped, _ = ablate_run(tiny_run, cfg, torch.device("cpu"), workers=0)
    assert len(per) == 2 * per["path"].nunique() > 0 and len(skipped) == 0
    np.testing.assert_array_equal(per["score_after"], per["score_before"])
    assert (per["pred_after"] == per["pred_before"]).all()


def test_ablation_through_the_run_changes_scores_and_summarizes(tiny_run):
    cfg = AblationConfig(split="test", regions=["eyes", "brows", "hair"], batch_size=8)
    per, _, classes = ablate_run(tiny_run, cfg, torch.device("cpu"), workers=0)
    assert set(per["region"]) == {"eyes", "brows", "hair"}
    assert (per["score_after"] != per["score_before"]).mean() > 0.5  # filling changes inputs
    summary = summarize(per, classes, n_boot=200)
    cols = ["n", "accuracy_change", "prob_change", "mcnemar_p_holm", "p_fw", "prob_change_low"]
    assert not summary[cols].isna().any().any()
    all_rows = summary[summary["selection"] == "all"].set_index("region")
    sub = per[per["region"] == "eyes"]
    assert all_rows.loc["eyes", "prob_change"] == pytest.approx(
        (sub["prob_after"] - sub["prob_before"]).mean()
    )
    assert (summary["mcnemar_p_holm"] >= summary["mcnemar_p"] - 1e-12).all()
    assert (summary["family"] == 3).all() and (summary["adjustment"] == "max-t").all()
    # the ranking orders regions by the mean drop of the true class's probability
    drop = (per["prob_before"] - per["prob_after"]).groupby(per["region"]).mean()
    drop = drop.sort_values(ascending=False)
    ranked = ranking(summary)
    assert list(ranked["region"]) == list(drop.index)
    np.testing.assert_allclose(ranked["effect"], drop.to_numpy(), rtol=1e-5, atol=1e-9)
    for r in ranked.itertuples():  # "excludes zero" is the interval's, on either side
        assert r.excludes_zero == (not r.prob_change_low <= 0 <= r.prob_change_high)
        # and the adjusted p-value comes from the same test (the draws' granularity apart)
        assert r.excludes_zero == (r.p_fw < 0.05) or abs(r.p_fw - 0.05) < 0.02


def test_zero_area_regions_and_empty_groups_give_no_nan_rows():
    per = pd.DataFrame({
        "path": ["a", "b", "c"], "label": ["female", "male", "male"], "group": ["A", "A", "A"],
        "region": ["hair"] * 3, "region_area": [0, 10, 12], "score_before": [1.0, 2.0, -1.0],
        "score_after": [1.0, 0.5, -1.5], "prob_before": [0.7, 0.8, 0.3],
        "prob_after": [0.7, 0.6, 0.2], "pred_before": ["female", "male", "female"],
        "pred_after": ["female", "female", "female"],
    })  # fmt: skip
    per["correct_before"] = per["pred_before"] == per["label"]
    per["correct_after"] = per["pred_after"] == per["label"]
    s = summarize(per, ["female", "male"], n_boot=100).set_index("selection")
    assert s.loc["all", "n"] == 2 and s.loc["all", "zero_area_images"] == 1
    assert "female" not in s.index and "A_F" not in s.index  # only zero-area: no row at all
    assert s.loc["all", "accuracy_change"] == pytest.approx(-0.5)
