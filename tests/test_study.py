"""The study config and runner: key checking, profiles, paths, and the skip / resume /
re-run decisions (on hand-made state and placeholder outputs, no training)."""

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import mark_done

from saliency.cli import main
from saliency.stages import registry
from saliency.stages.contract import Stage
from saliency.study import runner
from saliency.study.config import load, stage_names

STAGES = stage_names()


@dataclasses.dataclass(frozen=True)
class FakeStage(Stage):
    """A registry record whose run is a test's function."""

    fn: object = None

    def run(self, cfg, ctx):
        return self.fn(cfg, ctx)


def _replace_run(monkeypatch, name, fn) -> None:
    real = registry.all_stages()
    fields = {f.name: getattr(real[name], f.name) for f in dataclasses.fields(Stage)}
    fake = FakeStage(**fields, fn=fn)
    monkeypatch.setattr(registry, "all_stages", lambda: real | {name: fake})


ANALYSES = Path(__file__).resolve().parents[1] / "analyses"
DEMO = ANALYSES / "synthetic_demo.toml"


def _demo(tmp_path: Path):
    study = load(DEMO)
    study.out = tmp_path / "study"
    return study


def _finish(study, stages=None) -> None:
    """Mark stages done with their current settings and make their outputs."""
    mark_done(study, stages or [s for s in STAGES if study.enabled(s)])


def _actions(study, only=None) -> dict[str, str]:
    return {d.stage: d.action for d in runner.plan(study, only)}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[data]\n[train]\nepoch = 3\n", "unknown key train.epoch; valid keys: arch, "),
        ('[data]\n[train]\nepochs = "3"\n', "train.epochs must be int"),
        ("[data]\n[trian]\n", "unknown table [trian]; valid tables: study, profiles, data"),
        ("[data]\n", "the study needs a [train] table"),
        ('[data]\nsource = "import"\nformat = "celeba"\n[train]\n', "needs data.path"),
        ('[data]\nsource = "web"\n[train]\n', "data.source must be one of synth, import"),
        ("[data]\n[train]\n[explain]\nig = { steps = 8 }\n", "unknown key explain.ig.steps"),
    ],
)
def test_bad_configs_name_the_key_and_the_valid_ones(tmp_path, toml, message):
    path = tmp_path / "s.toml"
    path.write_text(toml)
    with pytest.raises(ValueError) as err:
        load(path)
    assert message in str(err.value)


def test_profile_overlays_key_by_key_and_paths_are_relative_to_the_file(tmp_path):
    base, quick = load(DEMO), load(DEMO, "quick")
    assert base.stages["explain"]["ig"]["baseline"] == "mean"
    assert quick.stages["explain"]["ig"] == {**base.stages["explain"]["ig"], "n_steps": 8}
    assert quick.stages["data"]["synth"]["n"] == 120 and base.stages["data"]["synth"]["n"] == 1000
    assert quick.stages["data"]["synth"]["cues"] == {"brows": 1.0}  # kept from the base
    with pytest.raises(ValueError, match="no profile 'fast'.*its profiles: quick"):
        load(DEMO, "fast")
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "s.toml"
    path.write_text('[data]\nsource = "manifest"\npath = "../m.csv"\n[train]\n')
    assert Path(load(path).stages["data"]["path"]).resolve() == (tmp_path / "m.csv").resolve()
    moved = load(path, over={"data": {"path": str(tmp_path / "x.csv")}})
    assert moved.stages["data"]["path"] == str(tmp_path / "x.csv")


def test_done_stages_skip_and_a_change_reruns_that_stage_and_what_reads_it(tmp_path):
    study = _demo(tmp_path)
    assert set(_actions(study).values()) == {"run"}
    _finish(study)
    assert set(_actions(study).values()) == {"skip"}
    study.stages["figures"]["dpi"] = 100
    acts = _actions(study)
    assert {s for s, a in acts.items() if a == "rerun"} == {"figures", "report"}
    reason = next(d.reason for d in runner.plan(study) if d.stage == "figures")
    assert "figures.dpi: 300 -> 100" in reason
    study = _demo(tmp_path)
    study.stages["train"]["epochs"] = 31
    acts = _actions(study)
    assert acts["data"] == "skip"
    # everything downstream of the model runs again; nothing upstream does
    assert {s for s, a in acts.items() if a == "rerun"} == set(STAGES) - {"data"} - {
        s for s in STAGES if not study.enabled(s)
    }
    study = _demo(tmp_path)
    study.stages["share"]["bootstrap"] = 500  # share feeds agreement, figures, report only
    acts = _actions(study)
    assert {s for s, a in acts.items() if a == "rerun"} == {
        "share",
        "agreement",
        "figures",
        "report",
    }


def test_missing_outputs_interrupted_stages_and_unrecorded_models(tmp_path):
    study = _demo(tmp_path)
    _finish(study)
    runner._outputs(study, "validate")[0].unlink()
    state = runner.read_state(study)
    state["null"]["status"] = "started"
    runner._write_state(study, state)
    acts = _actions(study)
    assert acts["validate"] == "run" and acts["null"] == "resume"
    assert acts["figures"] == "rerun"  # it reads validate, which runs again
    with pytest.raises(ValueError, match="'null' is not done with these settings"):
        runner.plan(study, ["validate"])
    assert _actions(study, ["null", "validate"]) == {"null": "resume", "validate": "run"}
    fresh = _demo(tmp_path / "other")
    (fresh.out / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds a model this study has no record of"):
        runner.plan(fresh)


def test_execute_clears_a_changed_stage_and_records_interruptions(tmp_path, monkeypatch):
    study = _demo(tmp_path)
    _finish(study)
    stale = runner._outputs(study, "report")[0]
    calls = []

    def fake(cfg, ctx):
        calls.append(stale.exists())  # the old report is gone when the stage starts
        stale.write_text("new")
        return "result"

    _replace_run(monkeypatch, "report", fake)
    study.stages["figures"]["dpi"] = 100
    decision = next(d for d in runner.plan(study) if d.stage == "report")
    assert decision.action == "rerun"
    result, seconds = runner.execute(study, decision)
    assert result == "result" and calls == [False] and stale.read_text() == "new"
    rec = json.loads((study.out / "study.json").read_text())["report"]
    assert rec["status"] == "done" and rec["fingerprint"] == decision.fingerprint

    def broken(cfg, ctx):
        raise RuntimeError("killed")

    _replace_run(monkeypatch, "report", broken)
    study.stages["figures"]["dpi"] = 150
    decision = next(d for d in runner.plan(study) if d.stage == "report")
    with pytest.raises(RuntimeError):
        runner.execute(study, decision)
    assert runner.read_state(study)["report"]["status"] == "started"
    assert _actions(study, ["figures", "report"]) == {"figures": "rerun", "report": "resume"}


def test_the_own_model_template_adopts_instead_of_training():
    study = load(ANALYSES / "own_model.toml")
    assert set(study.stages) == set(STAGES) - {"train", "null", "agreement"}
    assert (
        study.stages["adopt"]["arch"] == "resnet50" and study.stages["data"]["source"] == "manifest"
    )


@pytest.mark.parametrize("name", ["celeba", "utkface", "fairface", "morph", "imagefolder"])
def test_templates_parse_and_point_at_one_path(name, tmp_path, capsys):
    from saliency.data.importers import FORMATS

    study = load(ANALYSES / f"{name}.toml")
    assert study.stages["data"]["source"] == "import"
    assert study.stages["data"]["format"] in FORMATS
    assert set(study.stages) == set(STAGES) - {"adopt"}  # every stage of the pipeline
    missing = tmp_path / "nowhere"
    code = main(["run", str(ANALYSES / f"{name}.toml"), "--data", str(missing),
                 "--out", str(tmp_path / "o"), "--only", "data"])  # fmt: skip
    assert code == 2
    assert f"data.path {missing} does not exist" in capsys.readouterr().err


def test_imagefolder_template_imports_the_kaggle_layout(tmp_path, capsys):
    import numpy as np
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("Training", 10), ("Validation", 4)):
        for label in ("female", "male"):
            folder = tmp_path / "kaggle" / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    out = tmp_path / "o"
    code = main(["run", str(ANALYSES / "imagefolder.toml"), "--data", str(tmp_path / "kaggle"),
                 "--out", str(out), "--only", "data"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    m = pd.read_csv(out / "data" / "manifest.csv", keep_default_na=False)
    counts = m.groupby("split").size().to_dict()
    assert counts == {"test": 8, "train": 18, "val": 2}  # Validation -> test; 10% of train
    assert "study.json" in {p.name for p in out.iterdir()}
