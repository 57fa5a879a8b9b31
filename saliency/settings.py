"""One vocabulary for every setting: a config dataclass's fields are the TOML keys, the
``config.json`` keys and (with ``-`` for ``_``) the command-line flags.

A field declared with :func:`setting` carries its help text, its choices, its short
aliases (old flag spellings, shown in ``--help``) and the names it had before (read from
TOML, ``config.json`` and study records with a one-line warning). Nested config dataclasses
(``ExplainConfig.ig``) are TOML tables and prefixed flags (``--ig-n-steps``). Fields marked
``context`` (the run folder, the device, the workers, input and output folders) come from
the stage's context, never from a stage's TOML table.

Torch-free and import-light: the command line builds every ``--help`` from these.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any


def setting(
    default: Any = MISSING,
    *,
    help: str = "",
    choices: tuple | None = None,
    aliases: tuple[str, ...] = (),
    renamed: tuple[str, ...] = (),
    factory: Callable[[], Any] | None = None,
    parse: Callable[[str], Any] | None = None,
    metavar: str | None = None,
    context: bool = False,
    minimum: int | float | None = None,
) -> Any:
    """A dataclass field with its command-line and TOML description.

    ``aliases``: extra flag spellings (``--region``; for a bool, ``--no-fold`` sets it
    false). ``renamed``: the field's earlier names in TOML and recorded configs.
    ``parse``: text -> value for one command-line item (a dict field's ``KEY=VALUE``).
    ``minimum``: the smallest value a number may take (a batch size, a count of images)."""
    meta = {"help": help, "choices": choices, "aliases": tuple(aliases), "renamed": renamed,
            "parse": parse, "metavar": metavar, "context": context,
            "minimum": minimum}  # fmt: skip
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Option:
    """One setting of a config, flattened: ``path`` is ``("ig", "n_steps")`` for a nested one."""

    path: tuple[str, ...]
    kind: str  # bool, int, float, str, path, list, tuple, dict, size (imsize.InputSize)
    optional: bool  # None is a valid value
    default: Any
    help: str
    choices: tuple | None
    aliases: tuple[str, ...]
    renamed: tuple[str, ...]
    parse: Callable[[str], Any] | None
    metavar: str | None
    context: bool
    item: type = str  # element type of a list or tuple
    required: bool = False  # no default
    minimum: int | float | None = None

    @property
    def name(self) -> str:
        return "_".join(self.path)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def _kind(tp: Any) -> tuple[str, bool, type]:
    """(kind, optional, item type) of an annotation."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    optional = type(None) in typing.get_args(tp)
    if len(args) == 2 and int in args and tuple[int, int] in args:  # imsize.InputSize
        return "size", optional, int
    if optional and len(args) == 1:
        tp = args[0]
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        inner = [a for a in typing.get_args(tp) if a is not Ellipsis]
        item = inner[0] if inner else str
        return ("list" if origin is list else "tuple"), optional, item
    if origin is dict:
        return "dict", optional, str
    if tp is bool:
        return "bool", optional, bool
    if tp in (int, float, str):
        return tp.__name__, optional, tp
    if tp is Path:
        return "path", optional, Path
    return "str", optional, str


def options(cls: type, prefix: tuple[str, ...] = ()) -> list[Option]:
    """Every setting of config class ``cls``, nested configs flattened (depth first)."""
    hints = typing.get_type_hints(cls)
    out: list[Option] = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += options(tp, prefix + (f.name,))
            continue
        kind, optional, item = _kind(tp)
        m = f.metadata
        out.append(Option(prefix + (f.name,), kind, optional, default_of(f), m.get("help", ""),
                          m.get("choices"), m.get("aliases", ()), m.get("renamed", ()),
                          m.get("parse"), m.get("metavar"), m.get("context", False), item,
                          f.default is MISSING and f.default_factory is MISSING,
                          m.get("minimum")))  # fmt: skip
    return out


def nested(cls: type) -> dict[str, type]:
    """The fields of ``cls`` that are config dataclasses of their own (TOML tables)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)
            if dataclasses.is_dataclass(hints[f.name])}  # fmt: skip


def plain(value: Any) -> Any:
    """A value as TOML/JSON-like data (tuples as lists, dataclasses as dicts, paths as str)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def defaults(cls: type, drop_context: bool = True) -> dict[str, Any]:
    """``cls``'s settings and their defaults as plain data (nested configs as dicts)."""
    sub = nested(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if drop_context and f.metadata.get("context"):
            continue
        out[f.name] = defaults(sub[f.name]) if f.name in sub else plain(default_of(f))
    return out


def renames(cls: type) -> dict[str, str]:
    """Old name -> field name, for ``cls``'s own fields."""
    return {old: f.name for f in dataclasses.fields(cls) for old in f.metadata.get("renamed", ())}


def upgrade(cls: type, data: dict, where: str, warn: Callable[[str], None] | None) -> dict:
    """``data`` with the old names of ``cls``'s fields (nested too) replaced by the new ones;
    a flat ``<table>_<key>`` of a nested config (``synth_n``) moves into its table. ``warn``
    hears one line per old name found."""
    old = renames(cls)
    sub = nested(cls)
    prefixes = {name: name for name in sub}
    for f in dataclasses.fields(cls):
        if f.name in sub:
            prefixes |= {o: f.name for o in f.metadata.get("renamed", ())}
    fields_of = {t: {f.name for f in dataclasses.fields(c)} for t, c in sub.items()}
    out: dict = {}
    for key, value in data.items():
        new = old.get(key, key)
        match = next(((p, t) for p, t in prefixes.items() if _flat(key, p, fields_of[t])), None)
        if new == key and match is not None and key not in sub:
            table, inner = match[1], key[len(match[0]) + 1 :]
            if warn is not None:
                warn(f"{where}: {key!r} is now {table}.{inner} (a [{where}.{table}] table); "
                     f"read as {table}.{inner}")  # fmt: skip
            out.setdefault(table, {})[inner] = value
            continue
        if new != key and warn is not None:
            warn(f"{where}: {key!r} is now called {new!r}; read as {new!r}")
        if new in sub and isinstance(value, dict):
            value = upgrade(sub[new], value, f"{where}.{new}", warn)
            value = out.get(new, {}) | value
        out[new] = value
    return out


def _flat(key: str, prefix: str, names: set[str]) -> bool:
    return key.startswith(prefix + "_") and key[len(prefix) + 1 :] in names


def check_type(where: str, default: Any, value: Any) -> None:
    """A TOML value against the type of its default (``None`` defaults accept anything; an
    ``"auto"`` default also takes a number, as IG's ``n_steps``: its config checks the rest)."""
    if default is None or value is None:
        return
    if default == "auto" and isinstance(value, int | float) and not isinstance(value, bool):
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


def build(cls: type, data: dict, **context: Any) -> Any:
    """An instance of ``cls`` from plain data (TOML or ``config.json``): by field name, lists
    to tuples where the field is a tuple, nested tables to their configs; ``context`` fills
    the context fields. Unknown names are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in list(data) + list(context) if k not in names]
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; valid: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in (data | context).items():
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            value = value if isinstance(value, tp) else build(tp, value or {})
        elif isinstance(value, list) and _kind(tp)[0] == "tuple":
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        elif isinstance(value, dict) and _kind(tp)[0] == "dict":
            value = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        kwargs[key] = value
    cfg = cls(**kwargs)
    check_minimums(cfg)
    return cfg


def below_minimum(name: str, minimum: int | float | None, value: Any) -> str | None:
    """What is wrong with ``value`` for a setting whose smallest value is ``minimum``."""
    if minimum is None or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return None if value >= minimum else f"{name} must be at least {minimum}, not {value}"


def check_minimums(cfg: Any) -> None:
    """A ValueError naming the first setting of ``cfg`` below its minimum."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_minimums(value)
        elif why := below_minimum(f.name, f.metadata.get("minimum"), value):
            raise ValueError(why)
