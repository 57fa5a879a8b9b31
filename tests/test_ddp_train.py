"""Training under torchrun: two CPU processes (gloo) on ``synth_tiny``.

- the split of each global batch over the ranks covers it once (no padding, no duplicate),
  and an image's augmentation does not depend on the batch it is in;
- one step's all-reduced gradient over 2 ranks is the one-process gradient of the same global
  batch (7 images: 4 + 3, and 1 image: 1 + none), so the loss scaling is right;
- a 2-process run killed after its first epoch (the same launch as the gradient's, to pay
  for one start of two processes) resumes under torchrun to its full epoch
  count, leaves one set of checkpoints and a log with each epoch once, printed once, and
  its logged validation is the one-process validation of the weights it saved;
- ``--sync-bn`` on the CPU is refused before training, with the reason.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import ddp_worker  # tests/ is on sys.path (pytest's rootdir conftest)
import numpy as np
import pandas as pd
import pytest
import torch

from saliency.cli import main
from saliency.distributed import World, span
from saliency.models.augment import SampleDraws, augment
from saliency.models.recipe import Augmentation
from saliency.models.train import Trainer, config_from_checkpoint

TESTS = Path(__file__).parent
ROOT = TESTS.parent
TINY = ["--size", "32", "--batch-size", "32", "--workers", "0", "--device", "cpu"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
            "--master-port", str(_free_port()), *args]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "SALIENCY_PROGRESS": "0"}


def test_global_batches_split_over_ranks_once_and_augmentation_follows_the_sample():
    for n, batch, size in [(112, 32, 2), (7, 7, 2), (10, 4, 3), (1, 32, 2), (5, 2, 4)]:
        seen = []
        for rank in range(size):
            for s in range(0, n, batch):
                lo, hi = span(min(batch, n - s), rank, size)
                seen += range(s + lo, s + hi)
        assert sorted(seen) == list(range(n)), (n, batch, size)  # each position once
    assert [span(7, r, 2) for r in range(2)] == [(0, 4), (4, 7)]
    assert [span(1, r, 2) for r in range(2)] == [(0, 1), (1, 1)]  # rank 1 gets none
    # a sample's augmentation is the same alone as within a batch, whatever its place
    x = torch.rand(6, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    aug = Augmentation(erase=0.5, shift=0.1)
    pos = np.array([9, 3, 40, 41, 7, 0])
    batch = augment(x, aug, SampleDraws(5, 2, pos))
    for i in (0, 3, 5):
        alone = augment(x[i : i + 1], aug, SampleDraws(5, 2, pos[i : i + 1]))
        torch.testing.assert_close(alone[0], batch[i], rtol=0, atol=1e-6)
    assert not torch.equal(batch, augment(x, aug, SampleDraws(5, 3, pos)))  # epochs differ


@pytest.fixture(scope="module")
def killed(synth_tiny, tmp_path_factory) -> tuple[Path, Path]:
    """One 2-process launch (tests/ddp_worker.py): one step's gradient over global batches
    of 7 and 1 images saved to ``grads.pt``, then ``train`` for 2 epochs in the same process
    group, killed once epoch 1's ``last.pt`` exists. Returns the run and the gradients."""
    tmp = tmp_path_factory.mktemp("ddp")
    run, grads = tmp / "run", tmp / "grads.pt"
    last = run / "checkpoints" / "last.pt"
    train = ["train", "--out", str(run), "--manifest", str(synth_tiny / "manifest.csv"),
             "--epochs", "2", *TINY]  # fmt: skip
    cmd = _torchrun(str(TESTS / "ddp_worker.py"), str(synth_tiny / "manifest.csv"), str(grads),
                    "7", "1", "--", *train)  # fmt: skip
    err = tmp / "first.err"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                                stderr=stderr)  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)  # torchrun ends its workers
            proc.wait(timeout=60)
    assert last.is_file(), err.read_text()[-3000:]
    return run, grads


@pytest.mark.slow  # several processes on 2 cores: `make test-slow` (CI runs it after `make test`)
def test_two_rank_gradient_is_the_one_process_gradient_of_the_global_batch(
    killed, synth_tiny, tmp_path
):
    """Model in eval mode (batch norm on its running statistics, no dropout) with every
    augmentation on; 7 images split 4 + 3 (unequal slices: a rank's mean loss averaged by DDP
    would be off) and 1 image split 1 + none."""
    two = torch.load(killed[1], weights_only=True)
    trainer = Trainer(ddp_worker.config(synth_tiny / "manifest.csv", tmp_path / "one"))
    assert trainer.world == World()
    for n in (7, 1):
        one = ddp_worker.gradients(trainer, n)
        assert one.keys() == two[n].keys()
        scale = max(float(g.abs().max()) for g in one.values())
        for k, g in one.items():
            assert float((two[n][k] - g).abs().max()) <= 1e-5 * scale, (n, k)


@pytest.mark.slow  # several processes on 2 cores: `make test-slow` (CI runs it after `make test`)
def test_killed_two_process_run_resumes_to_one_set_of_files(killed):
    run = killed[0]
    last = run / "checkpoints" / "last.pt"
    train = ["-m", "saliency", "--", "train", "--out", str(run)]
    assert torch.load(last, weights_only=True)["epoch"] == 1  # killed during epoch 2

    resumed = subprocess.run(_torchrun(*train, "--resume", *TINY[-4:]), cwd=ROOT, env=_env(),
                             capture_output=True, text=True, timeout=180)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    printed = resumed.stdout.splitlines()
    assert sum("resuming after epoch 1 of 2" in line for line in printed) == 1, printed
    assert [line.split()[1] for line in printed if line.startswith("epoch")] == ["2"]
    files = {p.name for p in (run / "checkpoints").iterdir() if not p.name.startswith(".")}
    assert files == {"best.pt", "last.pt"}
    log = pd.read_csv(run / "train_log.csv")
    assert log["epoch"].tolist() == [1, 2]
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["epoch"] == 2 and [r["epoch"] for r in ckpt["resume"]["log"]] == [1, 2]
    assert not any(k.startswith("module.") for k in ckpt["state_dict"])
    # the logged validation (each rank its part, sums reduced, rank 0's batch-norm
    # statistics) is one process's validation of the saved weights
    cfg = config_from_checkpoint(run, device="cpu", workers=0)
    one = Trainer(cfg, resume=True)
    val_loss, val_acc = one.validate()
    assert val_acc == log["val_accuracy"].iloc[-1]
    assert val_loss == pytest.approx(log["val_loss"].iloc[-1], rel=1e-5)


def test_sync_bn_on_the_cpu_is_refused_before_training(synth_tiny, tmp_path, capsys):
    argv = ["train", "--manifest", str(synth_tiny / "manifest.csv"), "--out", str(tmp_path),
            "--sync-bn", "--epochs", "1", *TINY]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--sync-bn needs GPUs" in err and "SyncBatchNorm does not run on CPU" in err
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "config.json").exists()
