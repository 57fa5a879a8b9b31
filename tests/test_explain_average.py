"""explain and average end to end on a tiny trained run."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from saliency.analysis.permutation import max_t_test
from saliency.cli import main
from saliency.data.imageio import read_rgb
from saliency.methods.registry import IGConfig
from saliency.methods.store import read_maps
from saliency.stages.explain import ExplainConfig, explain_run


def average(run, *argv: str) -> int:
    return main(["average", "--run", str(run), "--workers", "0", *argv])


@pytest.fixture
def scratch(tiny_run, tmp_path):
    """A private copy of the session's ``tiny_run`` (without maps) for tests that write maps
    (and without ``last.pt``, the optimizer's state: explain reads ``best.pt``)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("saliency", "averages", "last.pt"))
    return run


@pytest.fixture(scope="module")
def explained(tiny_run, tmp_path_factory):
    """A private copy of ``tiny_run`` explained by four methods on the test split."""
    run = tmp_path_factory.mktemp("explained") / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("saliency", "averages", "last.pt"))
    argv = [
        "explain",
        "--run",
        str(run),
        "--methods",
        "cam,gradcam,hirescam,ig",
        "--workers",
        "0",
        "--ig-steps",
        "16",
    ]
    assert main(argv) == 0
    return run


def test_explain_writes_raw_maps_index_and_meta(explained):
    maps, index, meta = read_maps(explained / "saliency" / "test" / "ig")
    assert maps.dtype == np.float32 and maps.shape[1:] == (32, 32)
    assert len(index) == len(maps) == meta["shape"][0]
    assert meta["normalization"] == "none (raw maps)" and meta["target_policy"] == "predicted"
    assert meta["preprocessing"]["size"] == 32 and len(meta["checkpoint"]["sha256"]) == 64
    assert (index["target"] == index["pred"]).all()
    # the recorded completeness error is that of the stored maps: |sum - delta| / |delta|
    total = maps.sum(axis=(1, 2), dtype=np.float64)
    delta = index["ig_delta"].to_numpy()
    np.testing.assert_allclose(
        np.abs(total - delta) / np.abs(delta), index["ig_error"], rtol=1e-3, atol=1e-4
    )
    cam_meta = json.loads((explained / "saliency/test/cam/meta.json").read_text())
    assert cam_meta["grid"] == [2, 2]
    assert cam_meta["upsampling"]["rule"] == "receptive-field" and meta["upsampling"] is None


def test_coarse_grid_warning_only_for_grid_methods(scratch):
    def warnings(methods):
        cfg = ExplainConfig(split="val", methods=methods, limit=4, ig=IGConfig(n_steps=4))
        res = explain_run(scratch, cfg, torch.device("cpu"), workers=0, overwrite=True)
        return " ".join(res.warnings)

    assert "the map grid is 2x2" in warnings(["gradcam"])  # 32 px at output stride 16
    assert "map grid" not in warnings(["ig"])  # pixel maps: the grid does not matter


def test_explain_stores_a_method_added_by_one_register_call(scratch):
    """A method from outside the package (no settings, one column of its own) goes through
    the stage like a built-in one: its maps, its index column, its meta; a rerun skips it."""
    from saliency.methods import registry
    from saliency.methods.base import Method

    def compute(ctx):
        ctx.extras["brightness_total"] = ctx.unit.sum(dim=(1, 2, 3))
        return ctx.unit.sum(dim=1)

    registry.register(Method("brightness", False, "summed RGB", frozenset(), compute,
                             columns=("brightness_total",)))  # fmt: skip
    try:
        cfg = ExplainConfig(split="val", methods=["gradcam", "brightness"], limit=6, batch_size=4)
        res = explain_run(scratch, cfg, torch.device("cpu"), workers=0, overwrite=True)
        maps, index, meta = read_maps(res.out / "brightness")
        assert meta["method"] == "brightness" and meta["units"] == "summed RGB"
        assert meta["upsampling"] is None and meta["batchnorm_folded"] is False
        total = maps.sum(axis=(1, 2), dtype=np.float64)
        np.testing.assert_allclose(index["brightness_total"], total, rtol=1e-5)
        assert "brightness_total" not in read_maps(res.out / "gradcam")[1].columns
        again = explain_run(scratch, cfg, torch.device("cpu"), workers=0)
        assert again.resumed_from == again.n == 6 and again.flagged == {}
    finally:
        registry.REGISTRY.pop("brightness", None)


def test_explain_sees_exactly_the_logits_evaluate_classified(explained):
    _, index, _ = read_maps(explained / "saliency" / "test" / "cam")
    pred = pd.read_csv(explained / "eval" / "test" / "predictions.csv")
    assert index["path"].tolist() == pred["path"].tolist()
    np.testing.assert_allclose(index["logit"], pred["logit"], rtol=1e-5, atol=1e-5)


def test_target_policy_true_and_class(scratch):
    def cam_for(policy: str):
        cfg = ExplainConfig(methods=["cam"], target=policy, limit=16)
        res = explain_run(scratch, cfg, torch.device("cpu"), workers=0, overwrite=True)
        maps, index, meta = read_maps(res.out / "cam")
        assert meta["target_policy"] == policy
        return np.array(maps), index

    _, index = cam_for("true")
    assert index["target"].tolist() == index["label"].tolist()
    maps_m, index = cam_for("male")
    assert set(index["target"]) == {"male"}
    maps_f, _ = cam_for("female")
    np.testing.assert_allclose(maps_f, -maps_m, atol=1e-6)  # one logit: negations


def test_resumed_explain_equals_one_pass(scratch, tmp_path):
    import shutil

    device = torch.device("cpu")
    cfg = ExplainConfig(
        split="val", methods=["gradcam", "ig"], chunk=8, batch_size=4, ig=IGConfig(n_steps=8)
    )
    one = explain_run(scratch, cfg, device, workers=0, overwrite=True)
    reference = {m: np.array(read_maps(one.out / m)[0]) for m in cfg.methods}
    shutil.rmtree(one.out)

    class Stop(Exception):
        pass

    seen = []

    def stop_after_first_chunk(k):
        seen.append(k)
        if sum(seen) > 8:  # dies inside the second chunk
            raise Stop

    with pytest.raises(Stop):
        explain_run(scratch, cfg, device, workers=0, progress=stop_after_first_chunk)
    resumed = explain_run(scratch, cfg, device, workers=0)
    assert resumed.resumed_from == 8
    for m in cfg.methods:
        np.testing.assert_array_equal(np.array(read_maps(resumed.out / m)[0]), reference[m])
    # another method later: added beside the others, which are complete and not recomputed
    calls = []
    added = explain_run(
        scratch,
        ExplainConfig(split="val", methods=["cam", "gradcam"]),
        device,
        workers=0,
        progress=calls.append,
    )
    assert added.resumed_from == 0 and sum(calls) == added.n
    assert (added.out / "cam" / "maps.npy").is_file()
    np.testing.assert_array_equal(np.array(read_maps(added.out / "ig")[0]), reference["ig"])
    calls.clear()
    again = explain_run(scratch, cfg, device, workers=0, progress=calls.append)
    assert again.resumed_from == again.n and sum(calls) == again.n  # nothing left to do
    with pytest.raises(ValueError, match="gradcam maps made with other settings"):
        changed = ExplainConfig(split="val", methods=["gradcam"], upsample="half-pixel")
        explain_run(scratch, changed, device, workers=0)


def test_average_mean_and_std_equal_numpy(explained, synth_tiny, capsys):
    assert average(explained, "--method", "hirescam", "--group", "A_F", "--norm", "max") == 0
    maps, index, _ = read_maps(explained / "saliency" / "test" / "hirescam")
    sel = ((index["group"] == "A") & (index["label"] == "female")).to_numpy()
    raw = np.asarray(maps[sel], dtype=np.float64)
    expected = raw / np.abs(raw).max(axis=(1, 2), keepdims=True)  # "max": m / max|m|
    out = np.load(explained / "averages" / "hirescam_all_A_F.npz")
    np.testing.assert_allclose(out["mean"], expected.mean(axis=0), atol=1e-10)
    np.testing.assert_allclose(out["std"], expected.std(axis=0), atol=1e-10)
    assert int(out["count"]) == sel.sum() and str(out["normalization"]) == "max"
    faces = [read_rgb(synth_tiny / p) / 255.0 for p in index["path"][sel]]  # stored at 32 px
    np.testing.assert_allclose(out["mean_face"], np.mean(faces, axis=0), atol=1e-6)
    assert (explained / "averages" / "hirescam_all_A_F.png").is_file()


def test_average_all_groups_by_default_and_errors(explained, capsys):
    # (which files are written is the question here, not their previews: those are
    # checked beside the means they show, above and below)
    assert average(explained, "--method", "cam", "--no-preview") == 0
    names = {p.name for p in (explained / "averages").glob("cam_*.npz")}
    written = sorted(n for n in names if n.startswith("cam_all_") and "_vs_" not in n)
    assert written == [f"cam_all_{g}.npz" for g in ("A", "A_F", "A_M", "B", "B_F", "B_M", "all")]
    assert {"cam_correct_all.npz", "cam_incorrect_A_F.npz"} <= names  # every outcome
    assert not any("_vs_" in n for n in names)  # contrasts only when asked for
    assert average(explained, "--method", "cam", "--split", "all", "--contrast-cells",
                   "--permutations", "20", "--no-preview") == 0  # fmt: skip
    names = {p.name for p in (explained / "averages").glob("cam_*.npz")}
    assert {f"cam_all_{c}_vs_rest.npz" for c in ("A_F", "A_M", "B_F", "B_M")} <= names
    out = capsys.readouterr().out
    assert "all" in out and "A_F" in out
    for argv, msg in [
        (["--group", "C_F"], "valid values: all, A, B, A_F"),
        (["--split", "wrong"], "valid: all, correct, incorrect"),
        (["--class", "child"], "valid: female, male"),
        (["--method", "lime"], "valid: cam, gradcam, hirescam, ig"),
    ]:
        assert average(explained, *argv) == 2
        assert msg in capsys.readouterr().err


def test_contrast_writes_difference_and_fwe_pvalues(explained):
    assert (
        average(
            explained, "--method", "cam", "--group", "A", "--contrast", "B", "--permutations", "50"
        )
        == 0
    )
    out = np.load(explained / "averages" / "cam_all_A_vs_B.npz")
    maps, index, _ = read_maps(explained / "saliency" / "test" / "cam")
    raw = np.asarray(maps, dtype=np.float64)
    norm = raw / np.abs(raw).max(axis=(1, 2), keepdims=True)  # "max": m / max|m|
    a, b = (index["group"] == "A").to_numpy(), (index["group"] == "B").to_numpy()
    np.testing.assert_allclose(out["difference"], norm[a].mean(0) - norm[b].mean(0), atol=1e-9)
    assert int(out["count"]) == a.sum() and int(out["contrast_count"]) == b.sum()
    p = out["p_fwe"]  # permutation p-values: (1 + exceedances) / (1 + permutations)
    assert p.shape == (32, 32) and (p >= 1 / 51).all() and (p <= 1).all()
    np.testing.assert_allclose(p * 51, np.round(p * 51), atol=1e-9)
    assert (explained / "averages" / "cam_all_A_vs_B.png").is_file()  # mean map | difference


def test_max_t_permutation_finds_a_planted_difference_and_controls_errors():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (40, 10, 10))
    b = rng.normal(0, 1, (40, 10, 10))
    a[:, 2:4, 2:4] += 2.0  # planted difference in a 2x2 block
    res = max_t_test(a.reshape(40, -1), b.reshape(40, -1), n_permutations=400)
    sig = (res.p_fwe < 0.05).reshape(10, 10)
    assert sig[2:4, 2:4].all()
    outside = sig.copy()
    outside[2:4, 2:4] = False
    assert not outside.any()
    null = max_t_test(rng.normal(0, 1, (30, 100)), rng.normal(0, 1, (30, 100)), 400)
    assert (null.p_fwe < 0.05).sum() <= 1


def test_predict_prints_class_and_writes_overlays(explained, synth_tiny, tmp_path, capsys):
    tiny_run = explained
    pred = pd.read_csv(tiny_run / "eval" / "test" / "predictions.csv").iloc[0]
    img = synth_tiny / pred["path"]
    assert (
        main(
            [
                "predict",
                "--run",
                str(tiny_run),
                str(img),
                "--explain",
                "gradcam",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    fields = capsys.readouterr().out.strip().splitlines()[-1].split()  # after any warning
    # path, class, confidence, overlay: the class and probability evaluate computed
    assert fields[0] == str(img) and fields[1] == pred["pred"]
    assert fields[2] == f"{pred[f'prob_{pred.pred}']:.1%}"
    assert (tmp_path / f"{img.stem}_gradcam.png").is_file() and fields[-1].endswith(".png")


def test_ig_baselines(scratch):
    from saliency.methods.baselines import make_baseline
    from saliency.models.preprocess import Preprocessing, normalize

    pre = Preprocessing(size=8)
    unit = torch.rand(2, 3, 8, 8)
    black = make_baseline("black", unit, pre)
    torch.testing.assert_close(black, normalize(torch.zeros(1, 3, 8, 8), pre))
    flat = torch.full((2, 3, 8, 8), 0.4)  # a blur leaves a constant image as it is
    torch.testing.assert_close(make_baseline("blur", flat, pre), normalize(flat, pre))
    blur = make_baseline("blur", unit, pre)
    assert blur.shape == unit.shape
    std, mean = torch.tensor(pre.std).view(1, 3, 1, 1), torch.tensor(pre.mean).view(1, 3, 1, 1)

    def unblurred(t):
        return t * std + mean

    # a blur lowers the variance of random pixels a lot
    assert float(unblurred(blur).var()) < 0.5 * float(unit.var())
    a = make_baseline("noise", unit, pre, seed=4)
    torch.testing.assert_close(a, make_baseline("noise", unit, pre, seed=4))
    assert not torch.allclose(a, make_baseline("noise", unit, pre, seed=5))
    assert (
        a.shape == unit.shape and float(unblurred(a).min()) >= 0 and float(unblurred(a).max()) <= 1
    )
    with pytest.raises(ValueError, match="mean face"):
        make_baseline("mean", unit, pre)
    # the mean baseline through explain: the training split's mean face
    res = explain_run(
        scratch,
        ExplainConfig(methods=["ig"], limit=4, ig=IGConfig(n_steps=4, baseline="mean")),
        torch.device("cpu"),
        workers=0,
        overwrite=True,
    )
    meta = json.loads((res.out / "ig" / "meta.json").read_text())
    assert meta["ig"]["baseline"] == "mean" and meta["batchnorm_folded"] is True
