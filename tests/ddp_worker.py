"""One training step's gradient under DistributedDataParallel, for tests/test_ddp_train.py.

    torchrun --nproc_per_node=2 tests/ddp_worker.py MANIFEST OUT.pt N [N ...] [-- train ...]

Every rank builds the trainer on MANIFEST (gloo, CPU), puts the model in eval mode (batch
norm uses its running statistics, dropout is off: the only per-rank differences left are
the images) and runs :meth:`Trainer.backward` on its slice of each global batch of N images;
rank 0 saves ``{N: {parameter name: gradient}}`` (after DDP's all-reduce) to OUT.pt. The test
computes the same with :func:`gradients` in one process. Given ``-- train ...`` after the
sizes, the same processes then run that command in the same process group (the kill and
resume test's first run: one launch for both).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from saliency.models import ddp
from saliency.models.recipe import Augmentation, TrainConfig
from saliency.models.train import Trainer

# every augmentation on, so a sample augmented by its batch or rank would show
AUGMENTATION = Augmentation(hflip=0.5, rotation_deg=10.0, brightness=0.2, contrast=0.2,
                            erase=0.5, shift=0.1)  # fmt: skip


def config(manifest: str | Path, out: str | Path) -> TrainConfig:
    return TrainConfig(manifest=str(manifest), out=str(out), size=32, workers=0, device="cpu",
                       seed=7, augmentation=AUGMENTATION)  # fmt: skip


def gradients(trainer: Trainer, n: int) -> dict[str, torch.Tensor]:
    """The gradient of the mean loss over the first ``n`` images of the first epoch's order
    (one global batch of ``n``; each rank its slice), by parameter name."""
    trainer.net.eval()
    trainer.opt.zero_grad(set_to_none=True)
    order = trainer._order()[:n]
    for images, idx, pos, size in ddp.local_batches(trainer.source, order, n, trainer.world):
        trainer.backward(images, idx, pos, size)
    return {k: p.grad.detach().clone() for k, p in trainer.model.named_parameters()}


def main(argv: list[str]) -> int:
    from saliency.cli import main as command
    from saliency.distributed import from_env, start, stop

    argv, then = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (
        argv, [])  # fmt: skip
    manifest, out, sizes = argv[0], Path(argv[1]), [int(a) for a in argv[2:]]
    world = from_env()
    start(world, "cpu")
    trainer = Trainer(config(manifest, out.parent / f"run{world.rank}"), world=world)
    grads = {n: gradients(trainer, n) for n in sizes}
    if world.main:
        torch.save(grads, out)
    if then:
        return command(then)  # it leaves the process group when done
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
