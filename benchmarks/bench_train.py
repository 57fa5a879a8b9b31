"""Training throughput of `saliency train` against a bare PyTorch loop, in the same run.

Both train the same CAM-ready ResNet on the same preloaded images with the same batch size,
optimizer and batched augmentation, and run one validation pass per epoch; the framework
also writes its checkpoints and log. Prints images/s of each and the overhead.

    .venv/bin/python benchmarks/bench_train.py --n 1000 --size 64 --epochs 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from saliency.data.synth.config import SynthConfig
from saliency.data.synth.generate import generate
from saliency.models import outputs
from saliency.models.augment import Augmentation, augment
from saliency.models.preprocess import normalize, to_unit
from saliency.models.train import TrainConfig, Trainer
from saliency.models.zoo import ModelSpec, build_model


def bare_loop(trainer: Trainer, epochs: int, batch: int, seed: int) -> float:
    """A plain PyTorch loop over the trainer's preloaded images; returns seconds."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    images = torch.from_numpy(trainer.source.memory)
    y_all = trainer.source_y
    n_train = trainer.train_rows.size
    model = build_model(ModelSpec(arch=trainer.cfg.arch))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    aug, pre = Augmentation(), trainer.pre
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n_train, generator=gen)
        for i in range(0, n_train, batch):
            idx = order[i : i + batch]
            x = normalize(augment(to_unit(images[idx]), aug, gen), pre)
            loss = outputs.loss(model(x), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.inference_mode():
            for i in range(n_train, len(images), batch):
                x = normalize(to_unit(images[i : i + batch]), pre)
                outputs.loss(model(x), y_all[i : i + batch])
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        generate(SynthConfig(n=args.n, size=args.size, cues={"brows": 1.0}), data)
        cfg = TrainConfig(
            manifest=str(data / "manifest.csv"),
            out=str(Path(tmp) / "run"),
            size=args.size,
            epochs=args.epochs,
            batch_size=args.batch_size,
            early_stopping=args.epochs + 1,
            device="cpu",
        )
        trainer = Trainer(cfg)
        n_images = trainer.train_rows.size * args.epochs
        bare, ours = [], []
        for k in range(2):  # interleaved, best of two each, to bracket drift
            bare.append(bare_loop(trainer, args.epochs, args.batch_size, seed=0))
            fresh = Trainer(replace(cfg, out=str(Path(tmp) / f"run{k}")))
            start = time.perf_counter()
            fresh.fit()
            ours.append(time.perf_counter() - start)
    bare, ours = min(bare), min(ours)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.n} images at "
        f"{args.size} px, {args.epochs} epochs, batch {args.batch_size}"
    )
    print(f"bare PyTorch loop : {n_images / bare:8.1f} train images/s")
    print(f"saliency train    : {n_images / ours:8.1f} train images/s")
    print(f"overhead          : {100 * (ours / bare - 1):+.1f}% (goal: under 10%)")


if __name__ == "__main__":
    main()
