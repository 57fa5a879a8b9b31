"""Methods and stages from other packages: a tiny package installed on ``sys.path`` with
entry points in the ``saliency.methods`` and ``saliency.stages`` groups shows up in
``explain --help``, explains a run, and runs as a stage of a study, with no edit here."""

import shutil
import sys
import textwrap

import numpy as np
import pytest
from conftest import mark_done

from saliency.cli import main

PLUGIN = """
from saliency.methods.base import Method
from saliency.stages.contract import Result, Stage


def _compute(ctx):
    return ctx.unit.mean(1) * 0 + ctx.target.view(-1, 1, 1).float()  # [N, H, W]: the target


METHOD = Method(name="targetmap", grid=False, units="the target's index", needs=frozenset(),
                compute=_compute)


def _run(cfg, ctx):
    (ctx.run / "plugin.txt").write_text("ran")
    return Result(None, ["plugin stage ran"])


STAGE = Stage("plugin", None, "lab_plugin:_run", "a lab's own stage", deps=("train",),
              outputs=lambda ctx, cfg: [ctx.run / "plugin.txt"])
"""
ENTRY_POINTS = """
[saliency.methods]
targetmap = lab_plugin:METHOD

[saliency.stages]
plugin = lab_plugin:STAGE
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    (root / "lab_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "lab_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(root))
    yield root
    from saliency.methods.registry import REGISTRY

    REGISTRY.pop("targetmap", None)  # uninstalled: later tests see the built-in methods only
    sys.modules.pop("lab_plugin", None)


def test_a_plugin_method_is_offered_and_explains_a_run(plugin, tiny_run, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    assert "targetmap" in " ".join(capsys.readouterr().out.split())
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    argv = ["explain", "--run", str(run), "--methods", "targetmap", "--limit", "4",
            "--workers", "0", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    maps = np.load(run / "saliency" / "test" / "targetmap" / "maps.npy")
    assert maps.shape[0] == 4 and set(np.unique(maps)) <= {0.0, 1.0}  # the target's index


def test_a_plugin_stage_is_a_command_and_a_study_stage(plugin, tmp_path, capsys):
    from saliency.study import runner
    from saliency.study.config import parse, stage_names

    assert "plugin" in stage_names() and stage_names()[-1] == "plugin"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "a lab's own stage" in capsys.readouterr().out  # a command of its own
    study = parse({"data": {}, "train": {}, "plugin": {}})
    study.out = tmp_path / "study"
    mark_done(study, ("data", "train"))
    decisions = {d.stage: d for d in runner.plan(study)}
    assert decisions["train"].action == "skip" and decisions["plugin"].action == "run"
    result, _ = runner.execute(study, decisions["plugin"])
    assert result.lines() == ["plugin stage ran"]
    assert (study.out / "run" / "plugin.txt").read_text() == "ran"
    assert runner.plan(study)[-1].action == "skip"  # done now
