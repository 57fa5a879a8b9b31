"""This process among torchrun's: rank, world size, its device, and the few collective steps.

Under ``torchrun [its options] -m saliency -- COMMAND ...`` every process has ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` in its environment; :func:`from_env` reads them and
:func:`start` joins the process group (NCCL when the process runs on a GPU, gloo on CPUs).
Outside torchrun the world is one process and every step here is a no-op, so a stage calls
:func:`barrier` and :func:`broadcast` without asking which case it is in. Torch is imported
only by the steps that need it (the command line reads the world before any command runs).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# rank 0 may work alone for long (merging, figures, stages that do not shard) while the
# other ranks wait for it; torch's default (30 min for gloo, 10 for NCCL) would end them
TIMEOUT_ENV = "SALIENCY_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 6 * 3600
LAUNCH_FORM = "torchrun [torchrun's options] -m saliency -- COMMAND [options]"


@dataclass(frozen=True)
class World:
    """``rank`` of ``size`` processes; ``local_rank``: its index on its machine (its GPU)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes a stage's merged files, records and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def from_env(env: Mapping[str, str] | None = None) -> World:
    """The world torchrun describes in ``env`` (``os.environ``); one process outside it."""
    env = os.environ if env is None else env
    size = int(env.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return World()
    return World(int(env.get("RANK", "0")), size, int(env.get("LOCAL_RANK", "0")))


def rank_device(name: str, world: World) -> str:
    """The device of this rank for ``--device name``: ``auto`` and ``cuda`` become this
    rank's GPU (``cuda:LOCAL_RANK``) when GPUs are present; anything else as given."""
    if not world.distributed:
        return name
    import torch

    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        return f"cuda:{world.local_rank}"
    return name


def start(world: World, device: str) -> None:
    """Join torchrun's process group (once per process): gloo for CPU tensors, NCCL for GPU
    tensors where there are GPUs; a GPU ``device`` becomes this process's current one. The
    rendezvous (``MASTER_ADDR``/``MASTER_PORT`` or c10d) comes from torchrun."""
    import torch
    import torch.distributed as dist

    if not world.distributed or dist.is_initialized():
        return
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
    # CPU tensors (records, counts) over gloo, GPU tensors over NCCL where there are GPUs
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    try:
        dist.init_process_group(backend, timeout=timeout)
    except (ValueError, RuntimeError) as exc:  # no rendezvous: not started by torchrun
        raise ValueError(
            f"rank {world.rank} of {world.size} could not join its process group ({exc}); "
            f"start the processes with torchrun: {LAUNCH_FORM}"
        ) from exc


def stop() -> None:
    """Leave the process group (at the end of a command)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    """Whether this process is in a process group of more than one."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    """Wait for every rank (no-op outside a process group)."""
    import torch.distributed as dist

    if active():
        dist.barrier()


def broadcast(value: Any, src: int = 0) -> Any:
    """``value`` as rank ``src`` has it, on every rank (picklable; as given outside a group)."""
    import torch.distributed as dist

    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over the ranks, in place (``t`` outside a process group)."""
    import torch.distributed as dist

    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather(value: Any) -> list[Any]:
    """Every rank's ``value`` (picklable), in rank order, on every rank (``[value]``
    outside a process group)."""
    import torch.distributed as dist

    if not active():
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def span(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous part ``[lo, hi)`` of ``n`` items among ``size`` ranks: the
    first ``n % size`` ranks take one more (rank 0 has one whenever ``n > 0``); together they
    cover ``0..n-1`` once, without padding."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)
