"""A study as one TOML file (``analyses/<study>.toml``): which stages run, with what settings.

Each stage is a table named after it; a table that is absent is a stage that does not run
(``data`` is required, and a model: ``train``, or ``adopt`` for one trained elsewhere). A
table's keys are the fields of that stage's config (:mod:`saliency.configs`): the same names
as the command's flags (``n_steps`` is ``--n-steps``) and as ``RUN/config.json``; a nested
config is a table of its own (``[explain.ig]``, flags ``--ig-*``). The context a study fills
itself (the run folder, the manifest, the device and the workers) comes from ``[study]``.
Unknown tables and keys are errors that name the valid ones; a key under a name it had
before is read with a one-line warning. ``[profiles.P]`` holds tables that ``--profile P``
lays over the others (``saliency demo --quick`` uses ``quick``). ``data.path``, the paths of
each ``data.splits`` table and ``adopt.weights`` are relative to the TOML file's folder,
``study.out`` to the current folder
(as every command's ``--out``). ``saliency run --template`` prints every key with its default.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from saliency import settings
from saliency.imsize import as_size

REQUIRED = ("data",)  # and a model: [train], or [adopt] for one trained elsewhere
STUDY_KEYS = {"name": "study", "out": "runs/study", "device": "auto", "workers": 2}


def stage_names() -> tuple[str, ...]:
    """The stages a study may hold, in the order they run (the registry's)."""
    from saliency.stages.registry import study_stages

    return study_stages()


@dataclass
class Study:
    """A parsed study: ``stages`` maps each stage that runs to its settings (plain data, every
    key present). ``warnings``: one line per key read under an old name."""

    name: str
    out: Path
    device: str
    workers: int
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Path | None = None  # the TOML file
    warnings: list[str] = field(default_factory=list)

    def enabled(self, stage: str) -> bool:
        return stage in self.stages


def schema(stage: str) -> dict[str, Any]:
    """Stage ``stage``'s TOML keys with their defaults (nested configs as tables)."""
    from saliency.stages.registry import get

    cls = get(stage).config
    return settings.defaults(cls) if cls is not None else {}


def merge(where: str, defaults: dict, given: dict) -> dict:
    """``defaults`` updated by ``given``, key by key (nested tables too); unknown keys are
    errors naming the valid ones, and values must have their default's type."""
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if key not in defaults:
            valid = ", ".join(sorted(defaults)) or "none"
            raise ValueError(f"unknown key {where}.{key}; valid keys: {valid}")
        default = defaults[key]
        if isinstance(default, dict) and isinstance(value, dict) and _is_table(where, key):
            out[key] = merge(f"{where}.{key}", default, value)
            continue
        if _kind(where, key) == "size":  # 128 or [218, 178]
            as_size(value, f"{where}.{key}")
        else:
            settings.check_type(f"{where}.{key}", default, value)
        out[key] = value
    return out


def _kind(where: str, key: str) -> str | None:
    """The setting kind of ``where.key`` (``size``, ``int``, ...), None when not a setting."""
    from saliency.stages.registry import all_stages

    parts = where.split(".")
    stage = all_stages().get(parts[0])
    cls = stage.config if stage is not None else None
    for part in parts[1:]:
        cls = settings.nested(cls).get(part) if cls is not None else None
    if cls is None:
        return None
    return next((o.kind for o in settings.options(cls) if o.path == (key,)), None)


def _is_table(where: str, key: str) -> bool:
    """Whether ``where.key`` is a nested config (merged key by key) rather than a mapping
    value (cues, groups, label maps: replaced whole)."""
    from saliency.stages.registry import get

    stage = where.split(".")[0]
    cls = get(stage).config
    for part in where.split(".")[1:] + [key]:
        sub = settings.nested(cls) if cls is not None else {}
        if part not in sub:
            return False
        cls = sub[part]
    return True


def settle(stage: str, table: dict, warn) -> dict:
    """A stage's table as full settings: old names upgraded (``warn`` hears them), merged
    over the defaults, checked."""
    from saliency.stages.registry import get

    cls = get(stage).config
    given = settings.upgrade(cls, table or {}, stage, warn) if cls is not None else table
    return merge(stage, schema(stage), given or {})


def build_config(stage: str, values: dict, **context: Any) -> Any:
    """The config of ``stage`` from its settings (``context`` fills the context fields; the
    others get placeholders, for a check of the values alone)."""
    import dataclasses

    from saliency.stages.registry import get

    cls = get(stage).config
    if cls is None:
        return None
    ctx = {}
    for f in dataclasses.fields(cls):
        if not f.metadata.get("context"):
            continue
        if context.get(f.name) is not None:
            ctx[f.name] = context[f.name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            ctx[f.name] = "."  # a placeholder the stage's context replaces
    return settings.build(cls, values, **ctx)


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
    head = merge("study", STUDY_KEYS, raw.pop("study", {}))
    names = stage_names()
    unknown = [k for k in raw if k not in names]
    if unknown:
        raise ValueError(
            f"unknown table [{unknown[0]}]; valid tables: study, profiles, {', '.join(names)}"
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
    warnings: list[str] = []
    stages = {s: settle(s, raw[s], warnings.append) for s in names if s in raw}
    base = source.parent if source is not None else Path.cwd()
    if stages["data"]["source"] == "splits" and stages["data"]["path"]:
        raise ValueError(
            "data.path (--data) does not apply to data.source = 'splits': point the path of "
            "each [data.splits.*] table at its data set"
        )
    if stages["data"]["path"]:
        stages["data"]["path"] = str(base / Path(stages["data"]["path"]).expanduser())
    for table in (stages["data"].get("splits") or {}).values():  # each split's data set too
        for key in ("path", "images", "identities"):
            if isinstance(table, dict) and table.get(key):
                table[key] = str(base / Path(table[key]).expanduser())
    if stages.get("adopt", {}).get("weights"):  # like data.path: relative to the TOML file
        stages["adopt"]["weights"] = str(base / Path(stages["adopt"]["weights"]).expanduser())
    for s, values in stages.items():
        build_config(s, values)  # the configs' own checks, now rather than mid-study
    out = Path(head["out"]).expanduser()
    return Study(head["name"], out, head["device"], int(head["workers"]), stages, source,
                 warnings)  # fmt: skip


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
