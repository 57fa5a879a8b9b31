"""`saliency demo` end to end on tiny settings, and a second run that keeps what exists."""

import json

from saliency.cli import main
from saliency.cli.demo import STAGES


def test_demo_runs_every_stage_and_a_second_run_keeps_them(tmp_path, capsys):
    argv = ["demo", "--out", str(tmp_path), "--n", "120", "--size", "32", "--train-size", "32"]
    assert main([*argv, "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    for k, stage in enumerate(STAGES, 1):
        assert f"[{k}/{len(STAGES)}] {stage}" in out
    assert len(STAGES) == 11
    data, run = tmp_path / "data", tmp_path / "run"
    for path in (data / "manifest.csv", data / "preview.png", data / "synth.json"):
        assert path.is_file(), path
    truth = json.loads((data / "synth.json").read_text())
    assert truth["ground_truth"]["cued_regions"] == ["brows"]
    assert truth["ground_truth"]["cue_cells"] == {"B_F": 0.5}
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert metrics["n"] == sum(1 for line in open(data / "manifest.csv") if ",test," in line)
    assert "B_F" in metrics["accuracy"]
    for m in ("cam", "gradcam", "ig"):  # maps of every test image, each method
        index = (run / "saliency" / "test" / m / "index.csv").read_text().splitlines()
        assert len(index) - 1 == metrics["n"], m
    for split in ("all", "correct", "incorrect"):  # an average face per split (all groups)
        assert any((run / "averages").glob(f"gradcam_{split}_*.npz")), split
    assert (run / "averages" / "cam_all_B_F.npz").is_file()
    assert (run / "share" / "ig_test" / "summary.csv").is_file()
    ranking = (run / "ablation" / "ranking_blur_delete.csv").read_text()
    assert all(r in ranking for r in ("eyes", "brows", "nose", "mouth", "skin", "hair"))
    assert (run / "agreement" / "ig_test.csv").is_file()
    assert any((run / "averages").glob("ig_incorrect_*_vs_correct.npz"))
    assert (run / "averages" / "gradcam_all_B_F_vs_rest.npz").is_file()
    listing = json.loads((run / "figures" / "figures.json").read_text())
    assert {"average_grid", "ablation_effects", "evaluation"} <= {
        f["name"] for f in listing["figures"]
    }
    for f in listing["figures"]:
        assert all((run / "figures" / name).is_file() for name in f["files"])
    assert "data:image/png;base64," in (run / "report.html").read_text()
    weights = (run / "checkpoints" / "best.pt").stat().st_mtime_ns
    assert main([*argv, "--epochs", "1"]) == 0
    again = capsys.readouterr().out
    assert "exists; keeping it" in again and "already trained; keeping it" in again
    assert (run / "checkpoints" / "best.pt").stat().st_mtime_ns == weights
