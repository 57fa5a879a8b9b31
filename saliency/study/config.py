"""A study as one TOML file (``analyses/<study>.toml``): which stages run, with what settings.

Each stage is a table named after it; a table that is absent is a stage that does not run
(``data`` is required, and a model: ``train``, or ``adopt`` for one trained elsewhere). A
table's keys are the fields of that stage's config (the same names as the command's
options, with ``_`` for ``-``), less the ones the study fills itself (the manifest, the run
folder, the device and the workers, which come from ``[study]``). Unknown tables and keys
are errors that name the valid ones. ``[profiles.P]`` holds tables that ``--profile P``
lays over the others (``saliency demo --quick`` uses ``quick``). ``data.path`` and
``adopt.weights`` are relative to the TOML file's folder, ``study.out`` to the current
folder (as every command's ``--out``).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

STAGES = ("data", "align", "regions", "train", "adopt", "evaluate", "explain", "average", "share",
          "ablate", "null", "agreement", "validate", "figures", "report")  # fmt: skip
REQUIRED = ("data",)  # and a model: [train], or [adopt] for one trained elsewhere
SOURCES = ("synth", "import", "manifest")
STUDY_KEYS = {"name": "study", "out": "runs/study", "device": "auto", "workers": 2}
# what the runner sets itself: never a key of a stage's table
FILLED = {"manifest", "out", "run", "device", "workers"}
# tables inside a table that are configs of their own (fixed keys, merged key by key); other
# mappings (cues, groups, label maps) are values, replaced whole
NESTED = {"train.augmentation", "explain.ig"}


@dataclass
class Study:
    """A parsed study: ``stages`` maps each stage that runs to its settings (plain data)."""

    name: str
    out: Path
    device: str
    workers: int
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Path | None = None  # the TOML file

    def enabled(self, stage: str) -> bool:
        return stage in self.stages


def _schemas() -> dict[str, dict[str, Any]]:
    """Each stage's valid keys with their defaults (nested tables as dicts)."""
    from saliency.data.importers import ImportOptions
    from saliency.data.synth.config import SynthConfig
    from saliency.models.recipe import TrainConfig
    from saliency.stages.ablate import AblationConfig
    from saliency.stages.adopt import AdoptConfig
    from saliency.stages.agreement import AgreementConfig
    from saliency.stages.align import AlignConfig
    from saliency.stages.average import AverageConfig
    from saliency.stages.evaluate import EvaluateConfig
    from saliency.stages.explain_settings import ExplainConfig
    from saliency.stages.figures import FiguresConfig
    from saliency.stages.null import NullConfig
    from saliency.stages.regions import RegionsConfig
    from saliency.stages.share import ShareConfig
    from saliency.stages.validate import ValidateConfig

    def keys(cls, drop=()) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(cls):
            if f.name in FILLED or f.name in drop:
                continue
            if f.default is not dataclasses.MISSING:
                value = f.default
            elif f.default_factory is not dataclasses.MISSING:
                value = f.default_factory()
            else:
                value = None
            out[f.name] = _plain(value)
        return out

    data = {"source": "synth", "path": None, "format": None, "preview": True, "check": True}
    data |= {f"synth_{k}": v for k, v in keys(SynthConfig).items()}
    data |= {f"import_{k}": v for k, v in keys(ImportOptions).items()}
    return {
        "data": data,
        "align": keys(AlignConfig),
        "regions": keys(RegionsConfig),
        "train": keys(TrainConfig),
        "adopt": keys(AdoptConfig),
        "evaluate": keys(EvaluateConfig, drop=("split",)) | {"splits": ["test"]},
        "explain": keys(ExplainConfig, drop=("target_file",)),
        "average": keys(AverageConfig, drop=("split", "contrast"))
        | {
            "splits": ["all", "correct", "incorrect"],
            "contrast_incorrect": True,
            "contrast_cells": True,
        },  # fmt: skip
        "share": keys(ShareConfig),
        "ablate": keys(AblationConfig),
        "null": keys(NullConfig),
        "agreement": keys(AgreementConfig),
        "validate": keys(ValidateConfig),
        "figures": keys(FiguresConfig),
        "report": {},
    }


def _plain(value: Any) -> Any:
    """Dataclass defaults as TOML-like data (tuples as lists, dataclasses as dicts)."""
    if dataclasses.is_dataclass(value):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _check_type(where: str, default: Any, value: Any) -> None:
    if default is None or value is None:
        return
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        list: lambda v: isinstance(v, list),
        dict: lambda v: isinstance(v, dict),
    }.get(type(default))
    if ok is not None and not ok(value):
        raise ValueError(
            f"{where} must be {type(default).__name__} (like {default!r}), not {value!r}"
        )


def _merge(where: str, defaults: dict, given: dict) -> dict:
    """``defaults`` updated by ``given``, key by key; unknown keys are errors."""
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if key not in defaults:
            valid = ", ".join(sorted(defaults)) or "none"
            raise ValueError(f"unknown key {where}.{key}; valid keys: {valid}")
        default = defaults[key]
        if f"{where}.{key}" in NESTED and isinstance(value, dict):
            out[key] = _merge(f"{where}.{key}", default, value)
            continue
        _check_type(f"{where}.{key}", default, value)
        out[key] = value
    return out


def overlay(base: dict, top: dict) -> dict:
    """``top``'s tables laid over ``base``'s, key by key (a profile over the study)."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = overlay(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse(
    raw: dict, source: Path | None = None, profile: str | None = None, over: dict | None = None
) -> Study:
    """A :class:`Study` from TOML data; ``profile`` lays ``[profiles.<profile>]`` over it,
    then ``over`` (tables given on the command line, e.g. ``--data``) over that."""
    raw = dict(raw)
    profiles = raw.pop("profiles", {})
    if profile is not None:
        if profile not in profiles:
            valid = ", ".join(sorted(profiles)) or "none"
            raise ValueError(f"no profile {profile!r} in the study; its profiles: {valid}")
        raw = overlay(raw, profiles[profile])
    if over:
        raw = overlay(raw, over)
    head = _merge("study", STUDY_KEYS, raw.pop("study", {}))
    unknown = [k for k in raw if k not in STAGES]
    if unknown:
        raise ValueError(
            f"unknown table [{unknown[0]}]; valid tables: study, profiles, {', '.join(STAGES)}"
        )
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise ValueError(f"the study needs a [{missing[0]}] table")
    models = [k for k in ("train", "adopt") if k in raw]
    if len(models) != 1:
        raise ValueError(
            "the study needs a [train] table (or [adopt], for a model trained elsewhere)"
            if not models
            else "a study trains its model or adopts one: keep [train] or [adopt], not both"
        )
    if "adopt" in raw and "null" in raw:
        raise ValueError(
            "[null] retrains the run's model by its recipe, which an adopted model lacks: "
            "drop [null] (validate still runs its randomization and curves)"
        )
    schemas = _schemas()
    stages = {s: _merge(s, schemas[s], raw[s] or {}) for s in STAGES if s in raw}
    src = stages["data"]["source"]
    if src not in SOURCES:
        raise ValueError(f"data.source must be one of {', '.join(SOURCES)}, not {src!r}")
    if src != "synth" and not stages["data"]["path"]:
        raise ValueError(f"data.source = {src!r} needs data.path (your copy of the data)")
    if src == "import" and not stages["data"]["format"]:
        raise ValueError("data.source = 'import' needs data.format (celeba, utkface, ...)")
    base = source.parent if source is not None else Path.cwd()
    if stages["data"]["path"]:
        stages["data"]["path"] = str(base / Path(stages["data"]["path"]).expanduser())
    if stages.get("adopt", {}).get("weights"):  # like data.path: relative to the TOML file
        stages["adopt"]["weights"] = str(base / Path(stages["adopt"]["weights"]).expanduser())
    out = Path(head["out"]).expanduser()
    return Study(head["name"], out, head["device"], int(head["workers"]), stages, source)


def load(path: str | Path, profile: str | None = None, over: dict | None = None) -> Study:
    """Read and check a study TOML file (``profile`` and ``over`` as in :func:`parse`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no study file {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    return parse(raw, path, profile, over)
