"""One name per setting: every config field is a flag of its command and a key of its study
table under the same name, unknown names are errors in both, ``--help`` shows the dataclass
default, old spellings still parse, and the template and the command reference are the code's.
"""

import argparse
import dataclasses
import re
import shlex
from pathlib import Path

import pytest
import tomllib

from saliency import settings
from saliency.cli import build_parser
from saliency.cli.options import config_from_args
from saliency.stages.registry import all_stages
from saliency.study.config import parse, schema, settle, stage_names
from saliency.study.template import template

ROOT = Path(__file__).resolve().parents[1]
# the command whose flags set a stage's config (the data stage's are synth's and data import's)
COMMAND = {"data": None}


def _subparsers(parser):
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            return a.choices
    return {}


PARSER = build_parser()
COMMANDS = _subparsers(PARSER)


def _other(opt: settings.Option):
    """A valid value unlike the default, as (command-line text, the value it means)."""
    d = opt.default
    if opt.choices:
        pick = next(c for c in opt.choices if c != d and not (isinstance(d, list) and c in d))
        if opt.kind in ("list", "tuple"):
            return str(pick), [pick]
        return str(pick), pick
    if opt.kind == "bool":
        return None, not d
    if opt.kind == "int":
        return "7", 7
    if opt.kind == "size":  # height x width; TOML and config.json: [218, 178]
        return "218x178", (218, 178)
    if opt.kind == "float":
        return "0.25", 0.25
    if opt.kind == "path":
        return "some/where", Path("some/where")
    if opt.kind in ("list", "tuple"):
        if opt.item is float:
            n = len(d) if d else 3
            return ",".join(["0.25"] * n), [0.25] * n
        return "a,b", ["a", "b"]
    return None, None  # str / dict: chosen per field below


SPECIAL = {  # fields whose values must make sense to the config's own checks
    ("ablate", "regions"): ("eyes", ["eyes"]),
    ("ablate", "groups"): ("A", ["A"]),
    ("average", "outcomes"): ("incorrect", ["incorrect"]),
    ("synth", "size"): ("64", 64),
    ("align", "size"): ("64", 64),
    ("synth", "cues"): ("brows=1", {"brows": 1.0}),
    ("synth", "cue_cells"): ("B_F=0.5", {"B_F": 0.5}),
    ("synth", "fringe"): ("A_F=0.8", {"A_F": 0.8}),
    ("synth", "groups"): ("A=0:0.4,B=0.5:1", {"A": (0.0, 0.4), "B": (0.5, 1.0)}),
    ("synth", "split_fractions"): ("0.5,0.25,0.25", [0.5, 0.25, 0.25]),
    ("adopt", "mean"): ("0.5,0.5,0.5", (0.5, 0.5, 0.5)),
    ("adopt", "std"): ("0.2,0.2,0.2", (0.2, 0.2, 0.2)),
    ("train", "freeze"): ("head+1", "head+1"),
}
ANY_STAGE = {"ig_n_steps": ("16", 16)}  # auto or a number: every stage with IG's settings
CASES = [
    (name, opt)
    for name, stage in all_stages().items()
    if stage.config is not None and name != "data"
    for opt in settings.options(stage.config)
]


def _value(name, opt):
    if (name, opt.name) in SPECIAL:
        return SPECIAL[(name, opt.name)]
    if opt.name in ANY_STAGE:
        return ANY_STAGE[opt.name]
    text, value = _other(opt)
    if opt.kind in ("str",) and value is None:
        return "something", "something"
    if opt.kind == "dict" and value is None:
        return "k=v", {"k": "v"}
    return text, value


def _field(cfg, opt):
    value = cfg
    for part in opt.path:
        value = getattr(value, part)
    return value


def _same(a, b) -> bool:
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return list(a) == list(b)
    return a == b


@pytest.mark.parametrize(("name", "opt"), CASES, ids=[f"{n}.{o.name}" for n, o in CASES])
def test_every_setting_is_a_flag_of_its_command(name, opt):
    parser = COMMANDS[name]
    text, value = _value(name, opt)
    required = [a.option_strings[0] for a in parser._actions
                if a.required and a.dest != opt.name]  # fmt: skip
    argv = [x for r in required for x in (r, "x")]
    if name == "train" and opt.name != "manifest":  # required unless --resume
        argv += ["--manifest", "m"]
    if opt.kind == "bool":
        argv.append(opt.flag if value else f"--no-{opt.flag[2:]}")
    else:
        argv += [opt.flag, text]
    args = parser.parse_args(argv)
    cfg = config_from_args(all_stages()[name].config, args)
    assert _same(_field(cfg, opt), value), (opt.flag, _field(cfg, opt), value)
    # the help shows the dataclass default (or says what it means)
    help_text = " ".join(parser.format_help().split())
    assert opt.flag in help_text
    entry = next(a for a in parser._actions if a.dest == opt.name and a.help)
    assert "default" in " ".join(entry.help.split()) or "required" in entry.help


STUDY_CASES = [
    (n, o) for n, o in CASES if all_stages()[n].in_study and not o.context
] + [
    ("data", o) for o in settings.options(all_stages()["data"].config) if not o.context
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "opt"), STUDY_CASES, ids=[f"{n}.{o.name}" for n, o in STUDY_CASES]
)
def test_every_setting_is_a_key_of_its_study_table(name, opt):
    stage = "data" if name == "data" else name
    if name == "data" and len(opt.path) > 1:  # [data.synth], [data.imports]
        inner = dataclasses.replace(opt, path=opt.path[1:])
        _, value = _value("synth" if opt.path[0] == "synth" else "data", inner)
    else:
        _, value = _value(name, opt)
    plain = settings.plain(value)
    table: dict = {}
    where = table
    for part in opt.path[:-1]:
        where = where.setdefault(part, {})
    where[opt.path[-1]] = plain
    if name == "data" and opt.path == ("source",):
        table["path"] = "x.csv"
        if plain == "import":
            table["format"] = "csv"
    got = settle(stage, table, None)
    v = got
    for part in opt.path:
        v = v[part]
    assert _same(v, plain)


@pytest.mark.parametrize("name", [n for n in stage_names() if all_stages()[n].config])
def test_unknown_names_are_errors_in_both(name):
    with pytest.raises(ValueError, match="unknown key"):
        settle(name, {"no_such_setting": 1}, None)
    if name in COMMANDS and name != "data":
        with pytest.raises(SystemExit):
            COMMANDS[name].parse_args(["--no-such-setting", "1"])


def test_template_parses_back_into_the_defaults():
    text = template()
    study = parse(tomllib.loads(text))
    assert study.stages == {n: schema(n) for n in stage_names() if n != "adopt"}
    assert "# [adopt]" in text  # commented out: a study trains or adopts
    one = parse(tomllib.loads(template(["data", "train"])))
    assert set(one.stages) == {"data", "train"}


OLD_FLAGS = [
    ("average --run R --split incorrect --group AA_F", "average",
     {"outcomes": ["incorrect"], "groups": ["AA_F"]}),
    ("average --run R --split incorrect --group AA_F --method gradcam --class female "
     "--maps-split val", "average",
     {"methods": ["gradcam"], "label": "female", "maps_split": "val"}),
    ("ablate --run R --region eyes", "ablate", {"regions": ["eyes"]}),
    ("ablate --run R --region all --group A --no-protect", "ablate",
     {"regions": ["eyes", "brows", "nose", "mouth", "skin", "hair"], "groups": ["A"],
      "protect": False}),
    ("explain --run R --methods cam,gradcam --ig-steps 16 --ig-method riemann_trapezoid "
     "--ig-baseline blur --seed 3 --no-fold", "explain",
     {"methods": ["cam", "gradcam"], "ig": {"n_steps": 16, "method": "riemann_trapezoid",
      "baseline": "blur", "seed": 3}, "fold_bn": False}),
    ("validate --run R --method ig --no-floor", "validate", {"methods": ["ig"], "floor": False}),
    ("figures --run R --format png", "figures", {"formats": ("png",)}),
    ("figures --run R --format pdf,png", "figures", {"formats": ("pdf", "png")}),
    ("share --run R --split correct --group A --method ig", "share",
     {"outcomes": ["correct"], "groups": ["A"], "methods": ["ig"]}),
    ("agreement --run R --method ig --fill blur", "agreement",
     {"methods": ["ig"], "fills": ["blur"]}),
    ("regions --manifest m.csv --out o --no-hair", "regions", {"hair": False}),
    ("synth --out o --cue brows=1 --cue-cell B_F=0.5 --format jpg", "synth",
     {"cues": {"brows": 1.0}, "cue_cells": {"B_F": 0.5}, "image_format": "jpg"}),
    ("evaluate --run R --split val", "evaluate", {"splits": ["val"]}),
]  # fmt: skip


@pytest.mark.parametrize(("line", "name", "expect"), OLD_FLAGS, ids=[c[0] for c in OLD_FLAGS])
def test_old_spellings_still_work(line, name, expect):
    args = PARSER.parse_args(shlex.split(line))
    cfg = config_from_args(all_stages()[name].config, args)
    for key, value in expect.items():
        got = getattr(cfg, key)
        if isinstance(value, dict) and not isinstance(got, dict):
            for k, v in value.items():
                assert getattr(got, k) == v, (key, k)
        else:
            assert _same(got, value), (key, got, value)


def test_train_aliases_set_the_augmentation():
    args = PARSER.parse_args(shlex.split("train --manifest m --out o --rotation 5 --hflip 0"))
    from saliency.models.recipe import TrainConfig

    cfg = config_from_args(TrainConfig, args)
    assert cfg.augmentation.rotation_deg == 5.0 and cfg.augmentation.hflip == 0.0


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text() + (ROOT / "analyses" / "README.md").read_text()
    lines, out = [], []
    for block in re.findall(r"```(?:\w*)\n(.*?)```", text, flags=re.S):
        lines += block.replace("\\\n", " ").splitlines()
    for line in lines:
        line = line.strip()
        if line.startswith("saliency "):
            out.append(line.split(" #")[0])
    return out


def test_every_command_line_in_the_readme_parses():
    commands = _readme_commands()
    assert len(commands) >= 15
    for line in commands:
        try:
            PARSER.parse_args(shlex.split(line)[1:])
        except SystemExit as exc:
            if exc.code:  # --help exits 0
                raise AssertionError(f"README command does not parse: {line}") from None


def test_old_names_are_read_with_a_warning():
    warned: list[str] = []
    got = settle("average", {"splits": ["incorrect"], "group": ["A"], "method": ["ig"]},
                 warned.append)  # fmt: skip
    assert got["outcomes"] == ["incorrect"] and got["groups"] == ["A"] and got["methods"] == ["ig"]
    assert len(warned) == 3 and all("now called" in w for w in warned)
    warned.clear()
    data = settle("data", {"source": "synth", "synth_n": 50, "import_val_fraction": 0.2},
                  warned.append)  # fmt: skip
    assert data["synth"]["n"] == 50 and data["imports"]["val_fraction"] == 0.2
    assert len(warned) == 2


def test_the_command_reference_is_current():
    from saliency.cli.reference import reference

    doc = ROOT / "docs" / "commands.md"
    assert doc.is_file(), "docs/commands.md is missing: run `make docs`"
    assert doc.read_text() == reference(), "docs/commands.md is stale: run `make docs`"


def test_configs_hold_no_default_twice():
    # one source of defaults: no flag carries its own default (argparse's is suppressed)
    for name, parser in COMMANDS.items():
        stage = all_stages().get(name)
        if stage is None or stage.config is None:
            continue
        names = {o.name for o in settings.options(stage.config)}
        for a in parser._actions:
            if a.dest in names:
                assert a.default is argparse.SUPPRESS, (name, a.dest, a.default)


def test_settings_build_by_name():
    from saliency.configs.maps import ExplainConfig

    cfg = settings.build(ExplainConfig, {"ig": {"n_steps": 4}, "methods": ["ig"]})
    assert cfg.ig.n_steps == 4 and cfg.methods == ["ig"]
    with pytest.raises(ValueError, match="unknown setting"):
        settings.build(ExplainConfig, {"n_step": 4})
    assert dataclasses.is_dataclass(cfg.ig)
