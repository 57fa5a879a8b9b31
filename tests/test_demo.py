"""`saliency demo --quick`: the demo study's quick profile end to end, every stage's outputs,
and a second run that skips every stage and leaves the files alone."""

import json

import numpy as np
import pandas as pd
import pytest

from saliency.cli import main
from saliency.study.config import stage_names


def _selected(pred: pd.DataFrame, selection: str, split: str) -> np.ndarray:
    """Rows of predictions.csv in a selection (all, a group, a class, or a group_class cell)
    and a split (all, correct, incorrect), from the naming rules of DESIGN.md."""
    group, _, initial = selection.partition("_")
    if selection == "all":
        rows = np.ones(len(pred), bool)
    elif selection in set(pred["label"]):
        rows = (pred["label"] == selection).to_numpy()
    elif initial:
        rows = (pred["group"] == group) & pred["label"].str.upper().str.startswith(initial)
        rows = rows.to_numpy()
    else:
        rows = (pred["group"] == group).to_numpy()
    correct = pred["correct"].astype(str).str.lower().eq("true").to_numpy()
    return rows & {"all": True, "correct": correct, "incorrect": ~correct}[split]


@pytest.mark.slow  # a whole study end to end (~30 s): `make test-slow`, run by CI
def test_quick_demo_runs_every_stage_and_a_second_run_skips_them(tmp_path, capsys):
    # in-process loading and the CPU: the test shares two cores with another pytest worker
    # (the study's 2 loader processes are exercised by `make demo` and tests/test_ablation.py)
    quick = ["demo", "--quick", "--out", str(tmp_path), "--workers", "0", "--device", "cpu"]
    assert main(quick) == 0
    out = capsys.readouterr().out
    # synthetic faces need neither alignment nor regions; the demo trains, never adopts
    ran = [s for s in stage_names() if s not in ("align", "regions", "adopt")]
    for k, stage in enumerate(ran, 1):
        assert f"[{k}/{len(ran)}] {stage}: run (not run yet)" in out
        assert f"[{k}/{len(ran)}] {stage}: done in " in out
    assert "time: " in out and "smoke test, not a result" in out
    data, run = tmp_path / "data", tmp_path / "run"
    for path in (data / "manifest.csv", data / "preview.png", data / "synth.json"):
        assert path.is_file(), path
    truth = json.loads((data / "synth.json").read_text())
    assert truth["ground_truth"]["cued_regions"] == ["brows"]
    assert truth["ground_truth"]["cue_cells"] == {"B_F": 0.5}
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert metrics["n"] == sum(1 for line in open(data / "manifest.csv") if ",test," in line)
    assert "B_F" in metrics["accuracy"]
    pred = pd.read_csv(run / "eval" / "test" / "predictions.csv")
    for m in ("cam", "gradcam", "ig"):  # maps of every test image, each method, run and null
        index = pd.read_csv(run / "saliency" / "test" / m / "index.csv")
        null = pd.read_csv(run / "null" / "saliency" / "test" / m / "index.csv")
        assert len(index) == metrics["n"] == len(pred), m
        assert index["path"].tolist() == pred["path"].tolist(), m
        names = [p.rsplit("/", 1)[-1] for p in index["path"]]  # the null's are relative to it
        assert [p.rsplit("/", 1)[-1] for p in null["path"]] == names, m
        assert null["target"].tolist() == index["target"].tolist(), m  # the run's targets
    for split in ("all", "correct", "incorrect"):  # an average face per split and selection
        averages = [p for p in (run / "averages").glob(f"gradcam_{split}_*.npz")
                    if "_vs_" not in p.name]  # fmt: skip
        assert averages, split
        for npz in averages:
            cell = npz.stem.removeprefix(f"gradcam_{split}_")
            rows = _selected(pred, cell, split)
            assert int(np.load(npz)["count"]) == rows.sum() > 0, npz.name
    assert (run / "averages" / "cam_all_B_F.npz").is_file()
    assert any((run / "averages").glob("ig_incorrect_*_vs_correct.npz"))
    assert (run / "averages" / "gradcam_all_B_F_vs_rest.npz").is_file()
    assert (run / "share" / "ig_test" / "summary.csv").is_file()
    ranking = (run / "ablation" / "ranking_blur_delete.csv").read_text()
    assert all(r in ranking for r in ("eyes", "brows", "nose", "mouth", "skin", "hair"))
    assert (run / "agreement" / "ig_test.csv").is_file()
    assert (run / "null" / "checkpoints" / "best.pt").is_file()
    for name in ("verdicts", "lift", "randomization_verdicts", "curves_summary"):
        assert (run / "validation" / f"{name}.csv").is_file(), name
    listing = json.loads((run / "figures" / "figures.json").read_text())
    assert {"average_grid", "ablation_effects", "evaluation", "validation"} <= {
        f["name"] for f in listing["figures"]
    }
    for f in listing["figures"]:
        assert all((run / "figures" / name).is_file() for name in f["files"])
    assert "data:image/png;base64," in (run / "report.html").read_text()
    # the closing summary: group table with the hardest cell, ranking, verdicts, report
    tail = out[out.index("summary of") :]
    for text in ("hardest cell", "region ranking", "verdicts (recovered", "report: "):
        assert text in tail, text
    state = json.loads((tmp_path / "study.json").read_text())
    assert {s for s, r in state.items() if r["status"] == "done"} == set(ran)

    weights = (run / "checkpoints" / "best.pt").stat().st_mtime_ns
    report = (run / "report.html").stat().st_mtime_ns
    assert main(quick) == 0
    again = capsys.readouterr().out
    assert all(f"  {s:10s} skip   done with the same settings" in again for s in ran)
    assert ": done in " not in again and "hardest cell" in again
    assert (run / "checkpoints" / "best.pt").stat().st_mtime_ns == weights
    assert (run / "report.html").stat().st_mtime_ns == report
