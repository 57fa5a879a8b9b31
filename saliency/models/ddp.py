"""Training under torchrun: which images each rank takes, the DDP wrapper, the reductions.

Every rank draws the same global epoch order (the same seeded generator), cuts it into
global batches of ``batch_size`` and takes its contiguous slice of each
(:func:`saliency.distributed.span`: the first ``n % size`` ranks one more; no padding, no
duplicate, and a rank may get none of a short last batch). Each rank's loss is its slice's
summed loss over the global batch's size times the world size, so DDP's average over ranks
is the gradient of the global batch's mean loss, as one process would compute it
(:func:`loss_factor`). Outside a process group of more than one, every function here is the
one-process case.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from saliency.distributed import World, all_sum, from_env, span, start
from saliency.models.loader import ImageSource

SYNC_BN_CPU = (
    "--sync-bn needs GPUs: torch's SyncBatchNorm does not run on CPU tensors (device {device}); "
    "train without --sync-bn"
)


def loss_factor(n_local: int, n_global: int, size: int) -> float:
    """The factor on a rank's mean loss over its ``n_local`` images such that DDP's average
    of the ranks' gradients is the gradient of the mean loss over all ``n_global`` images
    (exactly 1.0 in one process)."""
    return n_local * size / n_global


def current_world(world: World | None, device: str) -> World:
    """``world`` when given (its process group joined if it has several ranks), else the
    world of the process group this process is in (one process when it is in none)."""
    import torch.distributed as dist

    if world is None:
        if not (dist.is_available() and dist.is_initialized()):
            return World()
        world = World(dist.get_rank(), dist.get_world_size(), from_env().local_rank)
    if world.distributed:
        start(world, device)
        if (dist.get_rank(), dist.get_world_size()) != (world.rank, world.size):
            raise ValueError(
                f"rank {world.rank} of {world.size} given, but this process is rank "
                f"{dist.get_rank()} of {dist.get_world_size()} in its process group"
            )
    return world


def check_sync_bn(sync_bn: bool, device: torch.device) -> None:
    """Refuse ``--sync-bn`` off GPUs (before any data are read)."""
    if sync_bn and device.type != "cuda":
        raise ValueError(SYNC_BN_CPU.format(device=device))


def prepare_model(model: torch.nn.Module, sync_bn: bool) -> torch.nn.Module:
    """The model with its batch norms synchronized over the ranks when ``sync_bn`` (the same
    parameters and state-dict keys; one process: plain batch norm's arithmetic)."""
    if sync_bn:
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """``model`` under DistributedDataParallel when the world has several ranks (its
    parameters and buffers broadcast from rank 0 now), else ``model`` itself."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else world.local_rank]
    return DistributedDataParallel(model, device_ids=ids if device.type == "cuda" else None)


def sync_buffers(model: torch.nn.Module, world: World) -> None:
    """Rank 0's buffers (batch-norm running statistics) on every rank: each rank updates
    its own from its slice during an epoch; rank 0's are the ones its checkpoints keep."""
    if not world.distributed:
        return
    import torch.distributed as dist

    for buf in model.buffers():
        dist.broadcast(buf, src=0)


def reduce_sums(values: list[float], device: torch.device) -> list[float]:
    """``values`` (sums and counts) summed over the ranks in float64; the same on every rank."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    return all_sum(t).tolist()


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of torch's global generator (dropout) for ``epoch`` on ``rank``: a resumed
    run redraws the same masks without stored state, and ranks draw different masks. (The
    hash of augmentation's draws at position ``-1 - rank``, which no image has.)"""
    from saliency.models.augment import SampleDraws

    u = SampleDraws(seed, epoch, np.array([-1 - rank])).rand(2)[0]
    return int(u[0] * (1 << 24)) << 24 | int(u[1] * (1 << 24))


Batch = tuple[torch.Tensor, torch.Tensor, np.ndarray, int]


def local_batches(
    source: ImageSource, order: np.ndarray, batch_size: int, world: World
) -> Iterator[Batch]:
    """This rank's slice of each global batch of ``order`` (source indices ``[n]``):
    ``(images uint8 [b, h, w, 3], source indices int64 [b], positions in order [b], global
    batch size)``; ``b`` may be 0 for a short last batch. Consecutive slices of one size
    are read in one pass of the source."""
    n = len(order)
    plan = []  # (positions of this rank's slice, global batch size)
    for start_ in range(0, n, batch_size):
        g = min(batch_size, n - start_)
        lo, hi = span(g, world.rank, world.size)
        plan.append((np.arange(start_ + lo, start_ + hi), g))
    k = 0
    while k < len(plan):
        b = len(plan[k][0])
        run = k
        while run < len(plan) and len(plan[run][0]) == b:
            run += 1
        if b == 0:
            for pos, g in plan[k:run]:
                empty = torch.empty((0, *source.pre.hw, 3), dtype=torch.uint8)
                yield empty, torch.empty(0, dtype=torch.int64), pos, g
        else:
            pos_all = np.concatenate([p for p, _ in plan[k:run]])
            chunks = source.batches(order[pos_all], b)
            for (pos, g), (images, idx) in zip(plan[k:run], chunks, strict=True):
                yield images, idx, pos, g
        k = run
