"""``saliency run --template``: a study TOML with every key, its default and its help.

Generated from the same config dataclasses as the flags, so it cannot fall behind them. Keys
whose default is "none" (TOML has no null) are written commented out; ``[adopt]`` is
commented out as a whole, since a study trains its model or adopts one.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from saliency import settings
from saliency.study.config import STUDY_KEYS, stage_names

STUDY_HELP = {
    "name": "the study's name (in the report)",
    "out": "output folder: data/, aligned/, regions/ and run/ inside it",
    "device": "auto, cpu, cuda, cuda:1, ... for every stage",
    "workers": "worker processes for every stage",
}


def value(v: Any) -> str:
    """``v`` in TOML syntax (strings quoted, arrays, inline tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML for {v!r}")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _table(name: str, cls: type, help_line: str) -> list[str]:
    """Lines of ``[name]`` for config ``cls``, nested configs as ``[name.sub]`` after it."""
    out = [f"[{name}]" + (f"  # {help_line}" if help_line else "")]
    subs = settings.nested(cls)
    hints = typing.get_type_hints(cls)
    later: list[str] = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("context"):
            continue
        help_text = f.metadata.get("help", "")
        if f.name in subs:
            later += ["", *_table(f"{name}.{f.name}", hints[f.name], help_text)]
            continue
        default = settings.plain(settings.default_of(f))
        choices = f.metadata.get("choices")
        note = help_text + (f" [{', '.join(map(str, choices))}]" if choices else "")
        if default is None:
            unset = "" if "default" in note else " (default: unset)"
            out.append(f"# {f.name} =   # {note}{unset}")
        else:
            out.append(f"{f.name} = {value(default)}  # {note}")
    return out + later


def template(stages: list[str] | None = None) -> str:
    """The TOML text: ``[study]`` and each stage's table (every stage when ``stages`` is
    None; ``[adopt]`` then commented out)."""
    from saliency.stages.registry import get

    names = stage_names()
    chosen = list(stages) if stages else list(names)
    bad = [s for s in chosen if s not in names]
    if bad:
        raise ValueError(f"unknown stage {bad[0]!r}; stages: {', '.join(names)}")
    lines = [
        "# A study: every stage's table with every key at its default (saliency run --template).",
        "# Keys are the command's flags with _ for - (--n-steps is n_steps; --ig-n-steps is",
        "# n_steps in [explain.ig]). Delete a table to skip its stage.",
        "",
        "[study]",
        *[f"{k} = {value(v)}  # {STUDY_HELP[k]}" for k, v in STUDY_KEYS.items()],
    ]
    for name in chosen:
        stage = get(name)
        block = _table(name, stage.config, stage.help) if stage.config else [f"[{name}]"]
        if name == "adopt" and stages is None:
            block = ["# A study trains its model ([train]) or adopts one: to adopt, delete",
                     "# [train] (and [null]) and uncomment this table."] + [
                f"# {line}" if line else "#" for line in block]  # fmt: skip
        lines += ["", *block]
    return "\n".join(lines) + "\n"
