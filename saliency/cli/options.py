"""Command-line flags generated from a config dataclass (:mod:`saliency.settings`), and the
config built back from the parsed flags by field name.

``n_steps`` is ``--n-steps``; a nested config's field is prefixed (``--ig-n-steps``); a bool is
``--name`` / ``--no-name``; a list repeats (``--group A --group B``) or takes commas
(``--methods cam,ig``); a dict takes ``KEY=VALUE`` items. Old spellings stay as aliases, shown
in ``--help``. Defaults live only in the dataclass: a flag not given is not passed, so the
dataclass default applies, and ``--help`` prints it.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from saliency.settings import Option, below_minimum, build, nested, options


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return ",".join(_text(v) for v in value) or "none"
    if isinstance(value, dict):
        items = (
            f"{k}={':'.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in value.items()
        )
        return ",".join(items) or "none"
    return str(value)


def _help(opt: Option) -> str:
    """The help text, with the valid values and the dataclass default inside one bracket."""
    extra = [f"one of {', '.join(map(str, opt.choices))}"] if opt.choices else []
    if "(default" not in opt.help:
        extra.append("required" if opt.required else f"default: {_text(opt.default)}")
    text = opt.help
    if extra and text.endswith(")"):  # "... (0: off)" -> "... (0: off; default: 0.0)"
        text = f"{text[:-1]}; {'; '.join(extra)})"
    elif extra:
        text = f"{text} ({'; '.join(extra)})"
    return text.replace("%", "%%")


def _metavar(opt: Option) -> str:
    """One value's name: GROUP for ``groups`` (a list flag takes one value per use)."""
    name = opt.path[-1].upper()
    if opt.kind in ("list", "tuple") and name.endswith("S") and not name.endswith("SS"):
        name = name[:-1]
    return name


class BadValue(Exception):
    """A flag's value its setting refuses: one line for the user (``cli.main`` prints it).

    Not a ValueError, which argparse would turn into a usage message."""


def _convert(opt: Option, text: str) -> Any:
    if opt.parse is not None:
        try:
            return opt.parse(text)
        except ValueError as exc:
            raise BadValue(f"{opt.flag}: {exc}") from None
    item = opt.item if opt.kind in ("list", "tuple") else {"path": Path}.get(opt.kind, opt.item)
    try:
        value = item(text) if item in (int, float, Path) else text
    except ValueError:
        raise BadValue(f"{opt.flag}: {text!r} is not {_article(item.__name__)}") from None
    if opt.choices is not None and value not in opt.choices:
        valid = ", ".join(map(str, opt.choices))
        raise BadValue(f"{opt.flag}: unknown value {text!r}; valid: {valid}")
    if why := below_minimum(opt.flag, opt.minimum, value):
        raise BadValue(why)
    return value


def _article(name: str) -> str:
    return {"int": "a whole number", "float": "a number"}.get(name, f"a {name}")


class _Many(argparse.Action):
    """A repeatable, comma-splitting flag: the first use replaces the default."""

    def __init__(self, *args, opt: Option, **kwargs) -> None:
        self.opt = opt
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        whole = self.opt.parse is not None and self.opt.kind != "dict"  # one value: R,G,B
        items = [values] if whole else [v.strip() for v in str(values).split(",") if v.strip()]
        converted = [_convert(self.opt, v) for v in items]  # BadValue: one line, exit 2
        if whole:
            setattr(namespace, self.dest, converted[0])
            return
        seen = getattr(namespace, "_given", set())
        current = getattr(namespace, self.dest, None) if self.dest in seen else None
        if self.opt.kind == "dict":
            merged = dict(current or {})
            merged.update(dict(converted))
            value: Any = merged
        else:
            value = list(current or []) + converted
        setattr(namespace, self.dest, value)
        namespace._given = seen | {self.dest}


def add_config_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    skip: tuple[str, ...] = (),
) -> None:
    """One flag per setting of ``cls`` (nested configs prefixed), named as the field."""
    for opt in options(cls):
        if opt.name in skip:
            continue
        names = [opt.flag, *[a for a in opt.aliases if not a.startswith("--no-")]]
        kw: dict[str, Any] = {"dest": opt.name, "default": argparse.SUPPRESS, "help": _help(opt)}
        if opt.metavar:
            kw["metavar"] = opt.metavar
        if opt.kind == "bool":
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kw)
            for alias in (a for a in opt.aliases if a.startswith("--no-")):
                same = f"same as --no-{opt.flag[2:]}"
                parser.add_argument(alias, dest=opt.name, action="store_false",
                                    default=argparse.SUPPRESS, help=same)  # fmt: skip
            continue
        kw.setdefault("metavar", _metavar(opt))
        if opt.kind in ("list", "tuple", "dict"):
            parser.add_argument(*names, action=_Many, opt=opt, **kw)
            continue
        if opt.required:
            kw["required"] = True
        parser.add_argument(*names, type=lambda t, o=opt: _convert(o, t), **kw)


def given(args: argparse.Namespace, cls: type, prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """The settings of ``cls`` given on the command line, as plain data by field name
    (nested configs as dicts of what was given inside them)."""
    out: dict[str, Any] = {}
    subs = nested(cls)
    for f in dataclasses.fields(cls):
        if f.name in subs:
            inner = given(args, subs[f.name], prefix + (f.name,))
            if inner:
                out[f.name] = inner
            continue
        key = "_".join(prefix + (f.name,))
        if hasattr(args, key):
            out[f.name] = getattr(args, key)
    return out


def config_from_args(cls: type, args: argparse.Namespace) -> Any:
    """``cls`` built by field name from the flags given (dataclass defaults for the rest),
    through :func:`saliency.settings.build`, as a TOML table is."""
    return build(cls, given(args, cls))
