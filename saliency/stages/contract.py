"""The stage contract: what every stage is, what it is given, and what it returns.

A stage is one :class:`Stage` record in :mod:`saliency.stages.registry`: its name, its config
type (a torch-free dataclass, :mod:`saliency.configs`), its module's ``run_stage(cfg, ctx)
-> Result`` (the stage's older ``run(...)`` stays its internal entry), the
stages whose files it reads, the files that prove it is done and what a re-run clears. A
:class:`StageContext` gives a stage its folders, device, workers and progress; it is also
where the process's rank and world size live when stages run under torchrun. A
:class:`Result` carries the stage's own result object and the lines the command line prints.

Torch-free: the command line and the study runner import this to build ``--help`` and plans.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _no_progress(name: str, total: int) -> Callable[[int], None]:
    return lambda n=1: None


@dataclass
class StageContext:
    """What a stage is given besides its settings.

    ``run``: the run folder; ``out``: the folder a preparing stage writes (synth, align,
    regions); ``manifest``: the manifest it reads. ``progress(name, total)`` returns an
    update function (counts). ``rank``/``world_size``: this process among torchrun's."""

    run: Path | None = None
    out: Path | None = None
    manifest: Path | None = None
    device: str = "auto"
    workers: int = 2
    progress: Callable[[str, int], Callable[[int], None]] = _no_progress
    on_epoch: Callable[[Any], None] | None = None  # training epochs, as they end
    on_trainer: Callable[[Any], None] | None = None  # the trainer, before it trains
    overwrite: bool = False  # replace outputs made with other settings
    resume: bool = False  # continue an interrupted stage (training)
    rank: int = 0
    world_size: int = 1

    def fill(self, cfg: Any) -> Any:
        """``cfg`` with its context fields (run, out, manifest, device, workers) set from
        this context where the context has them."""
        have = {f.name for f in dataclasses.fields(cfg) if f.metadata.get("context")}
        values = {"run": self.run, "out": self.out, "manifest": self.manifest,
                  "device": self.device, "workers": self.workers}  # fmt: skip
        change = {k: v for k, v in values.items() if k in have and v is not None}
        if "out" in have and "run" not in have and self.out is None and self.run is not None:
            change["out"] = self.run  # adopt and train write the run folder
        types = {f.name: str(f.type) for f in dataclasses.fields(cfg)}
        for key in ("out", "manifest", "run"):  # as the field declares it: str or Path
            if key in change and types[key].startswith("str"):
                change[key] = str(change[key])
        return dataclasses.replace(cfg, **change)

    def world(self):
        """This process among torchrun's (:class:`saliency.distributed.World`)."""
        from saliency.distributed import World, from_env

        return World(self.rank, self.world_size, from_env().local_rank)

    def reader(self):
        """The typed reader of the run folder (:class:`saliency.runs.Run`)."""
        from saliency.runs import Run

        if self.run is None:
            raise ValueError("this stage needs a run folder (--run)")
        return Run(self.run)


@dataclass
class Result:
    """A stage's outcome: its own result object, the lines that report it, the exit code
    (0 done; 1 done with nothing written)."""

    value: Any
    text: list[str] = field(default_factory=list)
    code: int = 0

    def lines(self) -> list[str]:
        return list(self.text)


def _nothing(ctx: StageContext, cfg: Any) -> list[Path]:
    return []


@dataclass(frozen=True)
class Stage:
    """One stage. ``entry`` is ``"module:function"`` of ``run(cfg, ctx) -> Result``, imported
    when the stage runs (so the registry stays torch-free). ``context``: what its command
    takes besides the config (``run``, ``out``, ``manifest``, ``device``, ``workers``,
    ``overwrite``). ``in_study``: a study may hold a table for it. ``outputs`` and ``clears``
    map ``(ctx, cfg)`` to paths: the files that prove it done, and what a re-run removes.
    ``sharded``: under torchrun every rank runs it; otherwise rank 0 alone (:meth:`run_in`)."""

    name: str
    config: type | None
    entry: str
    help: str
    deps: tuple[str, ...] = ()
    outputs: Callable[[StageContext, Any], list[Path]] = _nothing
    clears: Callable[[StageContext, Any], list[Path]] = _nothing
    context: tuple[str, ...] = ("run",)
    in_study: bool = True
    description: str | Callable[[], str] = ""  # its command's --help text (or a function)
    resumable: bool = True  # False: an interrupted run starts over (its outputs cleared)
    # under torchrun: True, every rank runs it (it shards its rows, rank 0 merges); False,
    # rank 0 runs it while the other ranks wait
    sharded: bool = False

    def run(self, cfg: Any, ctx: StageContext) -> Result:
        module, _, name = self.entry.partition(":")
        return getattr(importlib.import_module(module), name)(cfg, ctx)

    def run_in(self, cfg: Any, ctx: StageContext) -> Result:
        """Run it in the context's world: every rank when it is sharded, else rank 0 alone
        (the others get an empty result); then every rank waits for the others, so the next
        stage reads finished files."""
        from saliency.distributed import barrier

        result = self.run(cfg, ctx) if self.sharded or ctx.rank == 0 else Result(None)
        barrier()
        return result
