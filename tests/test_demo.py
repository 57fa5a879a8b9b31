"""`saliency demo` end to end on tiny settings, and a second run that keeps what exists."""

import json

from saliency.cli import main


def test_demo_runs_every_stage_and_a_second_run_keeps_them(tmp_path, capsys):
    argv = ["demo", "--out", str(tmp_path), "--n", "120", "--size", "32", "--train-size", "32"]
    assert main([*argv, "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    for stage in ("[1/4] synth", "[2/4] data check", "[3/4] train", "[4/4] evaluate"):
        assert stage in out
    data, run = tmp_path / "data", tmp_path / "run"
    for path in (data / "manifest.csv", data / "preview.png", data / "synth.json"):
        assert path.is_file(), path
    truth = json.loads((data / "synth.json").read_text())
    assert truth["ground_truth"]["cued_regions"] == ["brows"]
    assert truth["ground_truth"]["cue_cells"] == {"B_F": 0.5}
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert metrics["n"] == sum(1 for line in open(data / "manifest.csv") if ",test," in line)
    assert "B_F" in metrics["accuracy"]
    weights = (run / "checkpoints" / "best.pt").stat().st_mtime_ns
    assert main([*argv, "--epochs", "1"]) == 0
    again = capsys.readouterr().out
    assert "exists; keeping it" in again and "already trained; keeping it" in again
    assert (run / "checkpoints" / "best.pt").stat().st_mtime_ns == weights
