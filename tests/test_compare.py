"""``saliency compare``: train/val numbers at the best epoch, groups of seeds, CSV/MD/TeX."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saliency.analysis.compare_table import recipe_key
from saliency.cli import main
from saliency.models.checkpoint import read_checkpoint, save_checkpoint

LOG = ["train_loss", "train_accuracy", "val_loss", "val_accuracy"]


def _variant(tiny_run: Path, dest: Path, k: int, seed: int, epoch: int, **changes) -> Path:
    """A copy of ``tiny_run`` with another seed (and other options), best epoch, a known
    training log and known test accuracy and loss (numbers differ per ``k``)."""
    run = shutil.copytree(tiny_run, dest)
    best = run / "checkpoints" / "best.pt"
    ckpt = read_checkpoint(best)
    ckpt.train_config = {**ckpt.train_config, "seed": seed, "out": str(run), **changes}
    ckpt.epoch = epoch
    save_checkpoint(best, ckpt)
    log = pd.DataFrame({"epoch": [1, 2], "train_loss": [0.9 - k / 10, 0.5 - k / 20],
                        "train_accuracy": [0.55 + k / 50, 0.8 + k / 40],
                        "val_loss": [0.8 - k / 9, 0.6 - k / 30],
                        "val_accuracy": [0.5 + k / 30, 0.7 + k / 25],
                        "val_at_chance": [False, False], "lr": [3e-4, 3e-4],
                        "seconds": [1.0, 1.0]})  # fmt: skip
    log.to_csv(run / "train_log.csv", index=False)
    metrics_path = run / "eval" / "test" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["accuracy"]["all"]["value"] = 0.6 + k / 10
    metrics["loss"] = 0.7 - k / 11
    metrics_path.write_text(json.dumps(metrics))
    return run


@pytest.fixture
def fast_timing(monkeypatch):
    """Known milliseconds per image, one per run in order (no timing)."""
    from saliency.cli import compare

    ms = iter([2.0, 5.0, 11.0, 3.0])
    monkeypatch.setattr(compare, "inference_ms", lambda model, size: next(ms))


def test_compare_reads_the_best_epoch_and_groups_seeds_of_one_recipe(
    tiny_run, tmp_path, fast_timing, capsys
):
    a = _variant(tiny_run, tmp_path / "a", 1, seed=1, epoch=1)
    b = _variant(tiny_run, tmp_path / "b", 2, seed=2, epoch=2, workers=7, device="cuda:1")
    other = _variant(tiny_run, tmp_path / "c", 3, seed=1, epoch=2, lr=1e-3)
    runs = [a, b, other]
    out = tmp_path / "tables" / "cmp.csv"
    assert main(["compare", *map(str, runs), "--out", str(out)]) == 0
    table = pd.read_csv(out).set_index("run")
    assert list(table.index) == [str(r) for r in runs]
    expected = {}
    for run in runs:  # the numbers from the run's own files
        epoch = read_checkpoint(run / "checkpoints" / "best.pt").epoch
        log = pd.read_csv(run / "train_log.csv").set_index("epoch").loc[epoch]
        metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
        want = {c: log[c] for c in LOG}
        want |= {"accuracy": metrics["accuracy"]["all"]["value"], "loss": metrics["loss"]}
        row = table.loc[str(run)]
        assert row["epoch"] == epoch
        for c, v in want.items():
            assert row[c] == pytest.approx(v), (run.name, c)
        expected[run] = want | {"ms_per_image": row["ms_per_image"]}
    assert table["ms_per_image"].tolist() == [2.0, 5.0, 11.0]
    assert table.loc[str(a), "epoch"] == 1 and table.loc[str(b), "epoch"] == 2
    # a and b differ in seed, workers and device only: one recipe; the lr makes another
    assert table.loc[str(a), "recipe"] == table.loc[str(b), "recipe"]
    assert table.loc[str(other), "recipe"] != table.loc[str(a), "recipe"]

    groups = pd.read_csv(out.with_name("cmp_groups.csv"))
    assert groups["n"].tolist() == [2, 1]
    assert groups["seeds"].astype(str).tolist() == ["1 2", "1"]
    pair, alone = groups.iloc[0], groups.iloc[1]
    assert pair["recipe"] == table.loc[str(a), "recipe"]
    for c in [*LOG, "accuracy", "loss", "ms_per_image"]:
        values = np.array([expected[a][c], expected[b][c]], dtype=float)
        assert pair[f"{c}_mean"] == pytest.approx(values.mean()), c
        assert pair[f"{c}_sd"] == pytest.approx(values.std(ddof=1)), c
        assert alone[f"{c}_mean"] == pytest.approx(expected[other][c]), c
        assert np.isnan(alone[f"{c}_sd"]), c  # one run: no sd

    md = out.with_suffix(".md").read_text().splitlines()
    assert len(md) == 2 + 3 + 2  # header, rule, three runs, two groups
    pair_acc = f"{100 * np.mean([expected[a]['accuracy'], expected[b]['accuracy']]):.1f}"
    pair_sd = f"{100 * np.std([expected[a]['accuracy'], expected[b]['accuracy']], ddof=1):.1f}"
    assert f"{pair_acc} ± {pair_sd}" in md[5]
    tex = out.with_suffix(".tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\addlinespace" in tex
    assert f"{pair_acc} ± {pair_sd}" in tex
    printed = capsys.readouterr().out
    assert "groups" in printed and str(other) in printed


def test_compare_without_a_training_log_leaves_train_and_val_empty(tiny_run, tmp_path, fast_timing):
    run = shutil.copytree(tiny_run, tmp_path / "logless")
    (run / "train_log.csv").unlink()  # as an adopted model's run has none
    out = tmp_path / "cmp.csv"
    assert main(["compare", str(run), "--out", str(out)]) == 0
    row = pd.read_csv(out).iloc[0]
    assert all(np.isnan(row[c]) for c in LOG)
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert row["accuracy"] == pytest.approx(metrics["accuracy"]["all"]["value"])
    md = out.with_suffix(".md").read_text().splitlines()
    assert md[2].split(" | ")[3:5] == ["-", "-"]  # train and val accuracy shown as "-"


def test_an_adopted_model_has_no_recipe_and_the_seed_path_and_device_do_not_count():
    config = {"lr": 3e-4, "seed": 0, "out": "/a", "manifest": "/m.csv", "device": "cpu"}
    same = config | {"seed": 5, "out": "/b", "manifest": "/elsewhere/m.csv", "device": "cuda"}
    assert recipe_key(None, "abc") is None
    assert recipe_key(config, "abc") == recipe_key(same, "abc")
    assert recipe_key(config, "abc") != recipe_key(config, "other manifest content")
    assert recipe_key(config, "abc") != recipe_key(config | {"lr": 1e-3}, "abc")


def test_compare_refuses_an_out_that_is_not_the_csv(tiny_run, tmp_path, capsys):
    assert main(["compare", str(tiny_run), "--out", str(tmp_path / "t.md")]) == 2
    err = capsys.readouterr().err
    assert "--out names the CSV" in err and len(err.strip().splitlines()) == 1


def test_a_setting_added_later_counts_as_its_default():
    from saliency.analysis.compare_table import recipe_key
    from saliency.models.recipe import TrainConfig

    new = TrainConfig(manifest="m.csv", out="r").to_dict()
    old = {k: v for k, v in new.items() if k not in ("freeze", "optimizer", "scheduler")}
    assert recipe_key(old, "abc") == recipe_key(new, "abc")
    assert recipe_key(new | {"optimizer": "sgd"}, "abc") != recipe_key(new, "abc")
