"""Attribution share: exact per-region masses, rank accuracy, the joint bootstrap, the
"recovered" criteria, and the share / ablate commands end to end."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from saliency.analysis.agreement import agreement_table
from saliency.analysis.recovered import ablation_leader, judged, share_leader, verdict
from saliency.analysis.selection import Selection
from saliency.analysis.share.evidence import average_ranks, evidence, spearman
from saliency.analysis.share.mass import batch_region_mass, rank_accuracy, region_shares
from saliency.analysis.share.summary import summarize_shares
from saliency.data.imageio import read_label_map
from saliency.data.manifest import read_manifest
from saliency.data.regions import REGION_CODES, REGIONS
from saliency.methods.store import read_maps
from saliency.models.preprocess import resize_labels


def _labels() -> np.ndarray:
    lab = np.zeros((4, 4), np.uint8)
    lab[0, :2] = REGION_CODES["eyes"]
    lab[1, :] = REGION_CODES["nose"]
    lab[3, 3] = REGION_CODES["hair"]
    return lab


def test_region_mass_and_area_are_exact_on_a_hand_map():
    lab = _labels()
    m = np.zeros((4, 4))
    m[0, 0], m[0, 1], m[1, 2], m[2, 2], m[3, 3] = 2.0, -5.0, 1.0, 3.0, -1.0  # negatives ignored
    mass, area, total = batch_region_mass(torch.tensor(m[None]), torch.tensor(lab[None]))
    got = dict(zip(REGIONS, mass[0].tolist(), strict=True))
    assert total.item() == 6.0
    assert got == {"eyes": 2.0, "brows": 0.0, "nose": 1.0, "mouth": 0.0, "skin": 0.0, "hair": 0.0}
    assert dict(zip(REGIONS, area[0].tolist(), strict=True))["nose"] == 4 / 16
    single = region_shares(m, lab)  # the one-map version agrees
    assert single["eyes"]["share"] == pytest.approx(2 / 6)
    assert single["eyes"]["enrichment"] == pytest.approx((2 / 6) / (2 / 16))


def test_rank_accuracy_counts_the_top_k_pixels_inside_the_truth():
    truth = torch.zeros(3, 4, 4, dtype=torch.bool)
    truth[:, 0, :2] = True  # K = 2
    maps = torch.zeros(3, 4, 4)
    maps[0, 0, 0], maps[0, 0, 1] = 5, 4  # both top pixels inside
    maps[1, 0, 0], maps[1, 3, 3] = 5, 6  # one of two
    maps[2, 2, 2], maps[2, 3, 3] = 5, 6  # none
    acc = rank_accuracy(maps, truth)
    assert acc.tolist() == [1.0, 0.5, 0.0]
    assert torch.isnan(rank_accuracy(maps, torch.zeros_like(truth))).all()


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 6))
    b = a + rng.normal(size=(50, 6))
    a[:, 4] = a[:, 5]  # a tie in every row
    ours = spearman(a, b)
    ref = [spearmanr(x, y).statistic for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    assert average_ranks(np.array([3.0, 1.0, 3.0])).tolist() == [2.5, 1.0, 2.5]
    assert np.isnan(spearman(np.ones(6), np.arange(6.0)))


def test_enrichment_is_a_ratio_of_means_and_intervals_are_seeded():
    shares = np.array([[0.5, 0.1], [0.3, 0.3], [0.4, 0.2]])
    areas = np.array([[0.1, 0.2], [0.05, 0.3], [0.15, 0.25]])
    drops = np.array([[0.2, 0.0], [0.4, np.nan], [0.3, 0.1]])
    ev = evidence(shares, areas, drops, n_boot=500, seed=3)
    np.testing.assert_allclose(ev["enrichment"][0], shares.mean(0) / areas.mean(0))
    np.testing.assert_allclose(ev["drop"][0], [0.3, 0.05])  # NaN: not measured, left out
    assert ev["spearman"][0] == 1.0  # region 0 leads on both
    assert (ev["enrichment"][1] <= ev["enrichment"][0]).all()
    assert (ev["enrichment"][0] <= ev["enrichment"][2]).all()
    again = evidence(shares, areas, drops, n_boot=500, seed=3)
    np.testing.assert_array_equal(ev["enrichment"], again["enrichment"])


def test_recovered_needs_both_criteria_and_a_fine_enough_grid():
    regions = ["eyes", "nose", "mouth"]
    assert share_leader(regions, np.array([3.0, 2.0, 1.0]), np.array([2.5, 1.0, 0.5])) == "eyes"
    # the leader's lower bound is below the runner-up's estimate: no leader
    assert share_leader(regions, np.array([3.0, 2.0, 1.0]), np.array([1.9, 1.0, 0.5])) is None
    assert (
        ablation_leader(regions, np.array([0.1, 0.3, 0.0]), np.array([0.0, 0.05, -0.1])) == "nose"
    )
    assert ablation_leader(regions, np.array([0.1, 0.3, 0.0]), np.array([0.0, -0.01, 0])) is None
    assert verdict("nose", "nose") == "nose"
    assert verdict("nose", "eyes") is None and verdict(None, "eyes") is None
    assert verdict("nose", "nose", can_judge=False) is None
    up = {"rule": "receptive-field"}
    assert judged({"method": "cam", "grid": [4, 4], "upsampling": up})[0] is False
    assert judged({"method": "cam", "grid": [8, 8], "upsampling": up}) == (True, "")
    assert judged({"method": "ig", "grid": [4, 4], "upsampling": None}) == (True, "")


def test_label_maps_follow_the_stretch_without_inventing_codes():
    lab = np.zeros((64, 48), np.uint8)
    lab[10:20, 5:40] = 3
    lab[40:, :] = 6
    small = resize_labels(lab, 32)
    assert small.shape == (32, 32) and set(np.unique(small)) <= {0, 3, 6}
    # pixel centres: output row i samples input row floor((i + 0.5) * 64 / 32)
    rows = np.floor((np.arange(32) + 0.5) * 2).astype(int)
    cols = np.floor((np.arange(32) + 0.5) * 1.5).astype(int)
    np.testing.assert_array_equal(small, lab[rows][:, cols])
    square = lab[:48]
    assert resize_labels(square, 48) is square and resize_labels(small, 32) is small  # as is


def _per_image(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {"path": [f"{i}.png" for i in range(n)], "label": ["female", "male"] * (n // 2),
            "group": ["A"] * (n // 2) + ["B"] * (n // 2), "correct": ["True"] * n}  # fmt: skip
    for r in REGIONS:
        cols[f"area_{r}"] = rng.uniform(0.05, 0.2, n)
        cols[f"share_{r}"] = cols[f"area_{r}"] * (4.0 if r == "nose" else 1.0)
    cols["area_hair"] = np.zeros(n)  # no hair anywhere
    cols["share_hair"] = np.zeros(n)
    return pd.DataFrame(cols)


def test_summary_leaves_out_zero_area_regions_and_empty_selections_with_messages():
    per = _per_image()
    sels = [Selection("all", "all"), Selection("incorrect", "all"), Selection("all", "A_F")]
    t = summarize_shares(per, ["female", "male"], sels, n_boot=200)
    assert not t.summary.isna().any().any()
    assert "hair" not in set(t.summary["region"])
    assert any("hair has zero area" in m for m in t.messages)
    assert "no incorrect predictions, so no rows for them" in t.messages
    assert set(t.summary["selection"]) == {"all", "A_F"}
    lead = t.summary[t.summary["share_leader"]]
    assert set(lead["region"]) == {"nose"}
    a_f = t.summary[(t.summary["selection"] == "A_F")]
    assert (a_f["n"] == 10).all()


def test_agreement_recovers_a_region_only_with_a_null_and_both_answers_agreeing():
    per = _per_image()
    drops = pd.DataFrame({"path": per["path"]})
    rng = np.random.default_rng(1)
    for r in REGIONS:
        drops[f"drop_{r}"] = rng.normal(0.3 if r == "nose" else 0.0, 0.02, len(per))
    sel = [Selection("all", "all")]
    t = agreement_table(per, ["female", "male"], sel, {"blur": drops}, n_boot=300)
    row = t.iloc[0]
    assert row["ablation_leader"] == row["share_leader"] == "nose"
    assert row["recovered"] == "" and row["judged"] == "no null model"  # no null: no verdict
    assert row["n"] == len(per) and row["fill"] == "blur"
    # a null whose attribution follows area (shares = areas): the nose's lift leads
    per["image"] = per["path"]
    null = per.copy()
    for r in REGIONS:
        null[f"share_{r}"] = per[f"area_{r}"] / sum(per[f"area_{q}"] for q in REGIONS)
    t = agreement_table(per, ["female", "male"], sel, {"blur": drops}, n_boot=300, null=null)
    row = t.iloc[0]
    assert row["lift_leader"] == row["recovered"] == "nose" and row["n_null"] == len(per)
    # the same null, but the ablation says mouth: the two answers disagree, nothing recovered
    swapped = drops.rename(columns={"drop_nose": "drop_mouth", "drop_mouth": "drop_nose"})
    t = agreement_table(per, ["female", "male"], sel, {"blur": swapped}, n_boot=300, null=null)
    assert t.iloc[0]["ablation_leader"] == "mouth" and t.iloc[0]["recovered"] == ""
    coarse = agreement_table(per, ["female", "male"], sel, {"blur": drops},
                             judged=(False, "4x4"), n_boot=300, null=null)  # fmt: skip
    assert coarse.iloc[0]["recovered"] == "" and coarse.iloc[0]["ablation_leader"] == "nose"


@pytest.fixture
def own_run(tiny_run, tmp_path):
    """A private copy of the session's tiny run (other tests write into theirs), without
    ``last.pt`` (the optimizer's state: these commands read ``best.pt``)."""
    run = tmp_path / "run"
    shutil.copytree(
        tiny_run, run, ignore=shutil.ignore_patterns("saliency", "ablation", "share", "last.pt")
    )
    return run


def test_share_and_ablate_commands_write_tables_and_agreement(own_run, synth_tiny, capsys):
    from saliency.cli import main

    run = str(own_run)
    assert main(["explain", "--run", run, "--methods", "cam", "--workers", "0"]) == 0
    assert (
        main(["share", "--run", run, "--split", "all", "--bootstrap", "200", "--workers", "0"]) == 0
    )
    out = own_run / "share" / "cam_test"
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    per = pd.read_csv(out / "per_image.csv", keep_default_na=False)
    assert set(summary["selection"]) >= {"all", "A", "B", "female", "male", "A_F", "B_M"}
    maps, index, _ = read_maps(own_run / "saliency" / "test" / "cam")
    masks = read_manifest(synth_tiny / "manifest.csv").df.set_index("path")["mask"]
    assert sorted(per["path"]) == sorted(index["path"])  # every explained image, once
    for k in range(len(per)):  # the streamed table, by hand: each region's share of the
        # map's positive mass, and its share of the pixels (the masks are at the maps' 32 px)
        i = int(np.flatnonzero(index["path"] == per["path"].iloc[k])[0])
        lab = read_label_map(synth_tiny / masks[per["path"].iloc[k]])
        positive = np.clip(np.asarray(maps[i], np.float64), 0, None)
        assert lab.shape == positive.shape == (32, 32) and positive.sum() > 0
        for r in REGIONS:
            inside = lab == REGION_CODES[r]
            share = positive[inside].sum() / positive.sum()
            assert per[f"share_{r}"].iloc[k] == pytest.approx(share, rel=1e-5, abs=1e-12)
            assert per[f"area_{r}"].iloc[k] == pytest.approx(inside.mean(), rel=1e-5)  # 6 digits
    assert (out / "enrichment_all.png").is_file() and not (out / "enrichment_correct.png").exists()
    truth = pd.read_csv(out / "truth.csv")
    assert set(truth["truth"]) == {"brows"} and truth["chance"].between(0, 0.2).all()
    assert "grid" in capsys.readouterr().out  # a 2x2 grid at 32 px is not judged

    # agreement before any ablation: says what is missing, exit code 1
    assert main(["agreement", "--run", run, "--bootstrap", "100"]) == 1
    assert "saliency ablate" in capsys.readouterr().out
    # ablate one group, then the other: both are kept, and the agreement covers their images
    base = ["ablate", "--run", run, "--workers", "0", "--batch-size", "8"]
    assert main([*base, "--group", "A"]) == 0
    assert main([*base, "--group", "B_F"]) == 0
    capsys.readouterr()
    assert main(["agreement", "--run", run, "--group", "B_F", "--bootstrap", "100"]) == 0
    text = capsys.readouterr().out
    assert "agreement of ablation and attribution share" in text and "cam, B_F" in text
    stored = pd.read_csv(own_run / "ablation" / "eyes_blur_delete" / "per_image.csv",
                         keep_default_na=False)  # fmt: skip
    assert (
        set(stored["group"]) == {"A", "B"}
        and (stored[stored["group"] == "B"]["label"] == "female").all()
    )
    assert stored["path"].isin(per["path"]).all()  # one key: the manifest's path
    agreement = pd.read_csv(own_run / "agreement" / "cam_test.csv", keep_default_na=False)
    assert set(agreement["selection"]) == {"B_F"} and agreement["recovered"].eq("").all()
    assert set(agreement["split"]) <= {"all", "correct", "incorrect"}
    n_bf = int((per["group"].eq("B") & per["label"].eq("female")).sum())
    assert agreement.loc[agreement["split"] == "all", "n"].item() == n_bf
    assert main([*base, "--group", "Z"]) == 2
    assert "valid values" in capsys.readouterr().err
