"""The command reference (``docs/commands.md``), generated from the parser itself: every
command, every flag with its aliases, default and help. A test fails when the file is stale;
``make docs`` (``python -m saliency.cli.reference docs/commands.md``) rewrites it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HEADER = """# Command reference

Generated from the code by `make docs` (`python -m saliency.cli.reference docs/commands.md`);
a test fails when it is stale. Every setting of a stage is one name everywhere: the flag
(`--n-steps`), the key of the stage's table in a study TOML (`n_steps`; a nested config is a
table of its own, `--ig-n-steps` is `n_steps` in `[explain.ig]`) and the key in
`RUN/config.json`. Older spellings still work and are listed as aliases.
`saliency run --template` prints a study TOML with every key and its default.
"""


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps no public list of sub-commands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").replace("%%", "%").split())


def _section(name: str, parser: argparse.ArgumentParser, helps: dict[str, str]) -> list[str]:
    out = [f"## `saliency {name}`", ""]
    if helps.get(name):
        out += [helps[name][0].upper() + helps[name][1:] + ".", ""]
    if parser.description:
        out += [_cell(parser.description), ""]
    subs = _subparsers(parser)
    rows = []
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction | argparse._SubParsersAction):
            continue
        flags = a.option_strings or [a.dest.upper()]
        names = ", ".join(f"`{f}`" for f in flags)
        choices = f" ({', '.join(map(str, a.choices))})" if a.choices and not subs else ""
        rows.append(f"| {names} | {_cell((a.help or '') + choices)} |")
    if rows:
        out += ["| flag | meaning |", "|---|---|", *rows, ""]
    sub_helps = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub_helps = {c.dest: c.help for c in action._choices_actions}
    for sub_name, sub in subs.items():
        out += _section(f"{name} {sub_name}", sub, {f"{name} {k}": v for k, v in sub_helps.items()})
    return out


def reference() -> str:
    """The whole reference as Markdown."""
    from saliency.cli import build_parser

    parser = build_parser()
    helps = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in action._choices_actions}
    lines = [HEADER]
    lines += [f"- [`saliency {n}`](#saliency-{n}): {helps.get(n, '')}" for n in helps]
    lines.append("")
    for name, sub in _subparsers(parser).items():
        lines += _section(name, sub, helps)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    text = reference()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text)
    else:
        sys.stdout.write(text)
