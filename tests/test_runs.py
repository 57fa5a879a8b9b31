"""The typed run reader (:mod:`saliency.runs`): stages read each other's files through it,
never by importing a reader from another stage; its readers on small hand-made folders."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

import saliency
from saliency.runs import Run

STAGES = Path(saliency.__file__).parent / "stages"
# what one stage used to import from another to read its files
READERS = {"mean_face", "ground_truth", "share_table", "null_shares", "same_images",
           "recorded_configs", "fixed_targets", "applicable", "ablation_drops",
           "ablation_fills", "beside", "sample_batch", "SAMPLE", "PREPROCESSING_SUFFIX",
           "read_checkpoint"}  # fmt: skip


def test_no_stage_imports_a_reader_from_another_stage():
    bad = []
    for path in STAGES.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "saliency.stages"
            ):
                names = {a.name for a in node.names} & READERS
                bad += [f"{path.relative_to(STAGES)}:{node.lineno} {n}" for n in sorted(names)]
    assert not bad, bad
    export = (STAGES / "export.py").read_text()
    assert "saliency.stages.adopt" not in export and "stages import adopt" not in export


def test_the_run_reader_imports_no_torch():
    code = "import sys, saliency.runs; print('torch' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_require_names_the_command_that_makes_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="saliency train"):
        Run(tmp_path / "nothing").require()


def test_cam_is_left_out_by_one_rule_from_the_adoption_record(tmp_path):
    run = Run(tmp_path)
    assert run.adoption() is None
    assert run.applicable(["cam", "ig"]) == (["cam", "ig"], None)  # trained, or no model yet
    (tmp_path / "model").mkdir()
    rec = {"cam_ready": False, "cam_reason": "the head is not linear in the pooled maps"}
    (tmp_path / "model" / "adopted.json").write_text(json.dumps(rec))
    assert run.applicable(["cam", "ig"]) == (["ig"], f"cam left out: {rec['cam_reason']}")
    assert run.applicable(["gradcam"]) == (["gradcam"], None)


def test_recorded_configs_read_as_the_given_config_and_refuse_unrecorded_maps(tmp_path):
    from saliency.configs.maps import ExplainConfig

    run = Run(tmp_path)
    for m in ("cam", "ig"):
        (tmp_path / "saliency" / "test" / m).mkdir(parents=True)
        (tmp_path / "saliency" / "test" / m / "meta.json").write_text('{"shape": [5, 8, 8]}')
    with pytest.raises(ValueError, match="no explain record"):
        run.recorded_configs(ExplainConfig)
    cfg = ExplainConfig(methods=["cam", "ig"], limit=5, batch_size=4)
    config = {"commands": {"explain:test": {"config": cfg.to_dict()}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    [(split, (got, methods))] = run.recorded_configs().items()
    assert split == "test" and got == cfg and methods == ["cam", "ig"]
    again = run.same_images("test", got, ["ig"])
    assert again.methods == ["ig"] and again.limit == 5
    assert again.target_file == str(tmp_path / "saliency" / "test" / "ig" / "index.csv")


def test_ablation_readers_need_three_regions_and_put_blur_first(tmp_path):
    run = Run(tmp_path)
    assert run.ablation_fills() == [] and run.ablation_drops("blur") is None
    rows = pd.DataFrame({"path": ["a.png", "b.png"], "region_area": [0.1, 0.0],
                         "prob_before": [0.9, 0.8], "prob_after": [0.4, 0.8]})  # fmt: skip
    for fill, regions in (("mean", ("eyes",)), ("blur", ("eyes", "nose", "mouth"))):
        for r in regions:
            folder = tmp_path / "ablation" / f"{r}_{fill}_delete"
            folder.mkdir(parents=True)
            rows.to_csv(folder / "per_image.csv", index=False)
    assert run.ablation_fills() == ["blur", "mean"]
    assert run.ablation_drops("mean") is None  # one region only
    drops = run.ablation_drops("blur")
    assert list(drops.columns) == ["path", "drop_eyes", "drop_nose", "drop_mouth"]
    assert drops["drop_eyes"].iloc[0] == pytest.approx(0.5)
    assert pd.isna(drops["drop_eyes"].iloc[1])  # zero area: no drop
    assert run.null_shares("cam", "test") == [] and run.null.path == tmp_path / "null"
