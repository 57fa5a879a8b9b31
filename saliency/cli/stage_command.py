"""A stage's command, generated from its registry record: flags from its config, then
``run(cfg, ctx)`` and the result's lines printed.

Context flags (``--run``, ``--out``, ``--manifest``, ``--device``, ``--workers``,
``--overwrite``) come from the config's context fields where it has them, else from
:data:`CONTEXT_FLAGS`. A command that writes a run holds it (:mod:`saliency.runlock`) while
it runs (:func:`held_run`); ``--wait`` waits for another command writing it instead of
stopping.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from saliency.cli.options import add_config_arguments, config_from_args
from saliency.settings import options

CONTEXT_FLAGS: dict[str, dict[str, Any]] = {
    "run": {"type": Path, "required": True, "help": "the run folder (required)"},
    "out": {"type": Path, "required": True, "help": "output folder (required)"},
    "manifest": {"type": Path, "help": "the manifest CSV to read"},
    "device": {"default": "auto", "help": "auto, cpu, cuda, cuda:1, ... (default: auto)"},
    "workers": {"type": int, "default": 2, "help": "worker processes (default: 2)"},
    "overwrite": {"action": "store_true", "help": "replace outputs made with other settings"},
    "wait": {"action": "store_true",
             "help": "if another command is writing the run, wait for it (default: stop)"},
}  # fmt: skip
# stages whose --out is the run they make (held like a --run, created if missing)
RUN_MAKERS = {"adopt"}
# commands whose maps or numbers mean nothing for a model at chance: warned before they run
CHANCE_WARNED = {"explain", "average", "share", "ablate", "agreement", "validate"}


def register_stage(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    """Add stage ``name``'s command: its config's flags and its context."""
    from saliency.stages import registry

    stage = registry.get(name)
    text = stage.description() if callable(stage.description) else stage.description
    epilog = None
    if stage.sharded:  # the launch form, where a user who wants more processes looks
        epilog = (
            f"More processes or GPUs: torchrun --nproc_per_node=N -m saliency -- {name} ... "
            "(the -- ends torchrun's own options; README, 'Beyond one machine')"
        )
    p = sub.add_parser(name, help=stage.help, description=text or None, epilog=epilog)
    own = {o.name for o in options(stage.config)} if stage.config else set()
    for key in stage.context:
        if key not in own:
            spec = dict(CONTEXT_FLAGS[key])
            flag = f"--{key}"
            p.add_argument(flag, **spec)
    if "run" in stage.context or name in RUN_MAKERS:
        p.add_argument("--wait", **CONTEXT_FLAGS["wait"])
    if stage.config is not None:
        add_config_arguments(p, stage.config)
    p.set_defaults(func=lambda args: run_command(name, args))
    return p


class Bars:
    """Progress bars made on demand by a stage (``progress(name, total)``), closed at the end."""

    def __init__(self) -> None:
        self.bars: list = []

    def __call__(self, name: str, total: int):
        from saliency.cli.progress import bar

        self.bars.append(bar(total, name))
        return self.bars[-1].update

    def close(self) -> None:
        for b in self.bars:
            b.close()


def context_values(name: str, args: argparse.Namespace, cfg: Any) -> dict[str, Any]:
    """The context of stage ``name`` from its config's context fields, else the flags."""
    from saliency.stages import registry

    stage = registry.get(name)
    out: dict[str, Any] = {}
    for key in stage.context:
        value = getattr(cfg, key, None) if cfg is not None and hasattr(cfg, key) else None
        if value is None:
            value = getattr(args, key, None)
        if value is not None:
            out[key] = Path(value) if key in ("run", "out", "manifest") else value
    return out


def run_command(name: str, args: argparse.Namespace) -> int:
    """Build stage ``name``'s config from ``args``, run it, print its lines; its exit code."""
    from saliency.cli.chance import warn_if_at_chance
    from saliency.distributed import from_env
    from saliency.stages import registry
    from saliency.stages.contract import StageContext

    stage = registry.get(name)
    cfg = config_from_args(stage.config, args) if stage.config is not None else None
    values = context_values(name, args, cfg)
    if name in CHANCE_WARNED and values.get("run") is not None:
        warn_if_at_chance(values["run"])
    bars = Bars()
    world = from_env()
    ctx = StageContext(progress=bars, rank=world.rank, world_size=world.size, **values)
    run, create = held_run(name, values, cfg)
    with held(run, name, args, create):
        try:
            result = stage.run_in(cfg, ctx)
        finally:
            bars.close()
    for line in result.lines():
        print(line)
    return result.code


def held_run(name: str, values: dict[str, Any], cfg: Any) -> tuple[Path | None, bool]:
    """The run folder stage ``name`` writes (``None``: it writes none), and whether it makes
    it: its ``--run``; the ``--out`` of a :data:`RUN_MAKERS` stage; none when its own
    ``out`` setting sends its output outside the run (export --out F: it only reads the run)."""
    from saliency.stages import registry

    run = values.get("run")
    if run is None:
        return (values.get("out"), True) if name in RUN_MAKERS else (None, False)
    out = getattr(cfg, "out", None)
    if out and "out" not in registry.get(name).context:
        target, folder = Path(out).resolve(), Path(run).resolve()
        if folder != target and folder not in target.parents:
            return None, False
    return run, False


@contextlib.contextmanager
def held(
    run: Path | None, command: str, args: argparse.Namespace, create: bool = False
) -> Iterator[None]:
    """Hold ``run`` for ``command`` (:func:`saliency.runlock.hold`, waiting when ``args``
    says ``--wait``); a takeover of a dead process's lock is said on stderr. ``run`` None:
    nothing to hold."""
    if run is None:
        yield
        return
    from saliency.runlock import hold

    with hold(run, command, wait=bool(getattr(args, "wait", False)), create=create) as h:
        if h.note:
            print(f"saliency {command}: note: {h.note}", file=sys.stderr)
        yield
