"""Ablation speed against the plain forward passes it needs, measured in the same run.

``saliency ablate --region all`` classifies each image 7 times (the original and one
variant per region). This script times, interleaved and best of three:

  - ``forward``: those 7 N forward passes alone, on inputs already decoded, filled, resized
    and in memory (the floor: the model's own cost);
  - ``ablate``: :func:`saliency.analysis.ablation.ablate_run` end to end (decoding, region
    fills, the run's preprocessing, batched forward, result tables), once with the fills in
    DataLoader workers (OpenCV) and once batched on the model's device (torch).

Goal: ablate at least 0.9x the forward passes' speed. The model is a ResNet-18 (output
stride 16) trained for one epoch on synthetic faces (the weights do not change the cost).

    .venv/bin/python benchmarks/bench_ablate.py [--n 256] [--size 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from saliency.analysis.ablation import AblationConfig, ablate_run
from saliency.analysis.ablation_variants import Variants, fill_place
from saliency.data.synth.config import SynthConfig
from saliency.data.synth.generate import generate
from saliency.models.checkpoint import load_model
from saliency.models.evaluate import evaluation_rows
from saliency.models.preprocess import model_input
from saliency.models.train import TrainConfig, Trainer, resolve_device
from saliency.rundir import best_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=256, help="test images ablated")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32, help="images per batch (x 7 inputs)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="bench_ablate_"))
    total = int(args.n / 0.15) + 8  # the test split is 15%
    generate(SynthConfig(n=total, size=args.size, seed=0, cues={"nose": 1.0}), tmp / "data")
    cfg = TrainConfig(
        manifest=str(tmp / "data" / "manifest.csv"), out=str(tmp / "run"), size=args.size,
        epochs=1, workers=args.workers, device=str(device),
    )  # fmt: skip
    Trainer(cfg).fit()
    model, pre, _, ckpt = load_model(best_checkpoint(tmp / "run"), device)
    ab = AblationConfig(split="test", batch_size=args.batch_size, limit=args.n)
    rows, manifest = evaluation_rows(ckpt, "test")
    rows = rows.head(args.n)
    masks = [manifest.parent / m for m in rows["mask"]]
    variants = Variants(rows["path"], masks, ab, pre.size)
    stacks = torch.cat([variants[i][1][1] for i in range(len(variants))])  # [7 N, S, S, 3]
    n = len(rows)
    print(f"{n} images x 7 inputs ({stacks.shape[0]} forward passes) at {pre.size} px on {device}")

    def forward() -> None:
        with torch.inference_mode():
            for b in stacks.split(args.batch_size * 7):
                model(model_input(b.to(device), pre)).float().cpu()

    def ablate(place: str):
        cfg = AblationConfig(split="test", batch_size=args.batch_size, limit=args.n, fill_on=place)
        return lambda: ablate_run(tmp / "run", cfg, device, workers=args.workers)

    fns = {"forward": forward, "workers": ablate("workers"), "device": ablate("device")}
    best = dict.fromkeys(fns, float("inf"))
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(3):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    rate = {k: n / v for k, v in best.items()}
    print(f"forward passes alone             : {rate['forward']:8.1f} images/s (7 inputs each)")
    auto = fill_place("auto", device)
    for place in ("workers", "device"):
        ratio = rate[place] / rate["forward"]
        verdict = f"goal >= 0.90x: {'met' if ratio >= 0.9 else 'NOT met'}"
        mark = " (auto's choice here)" if place == auto else ""
        print(
            f"ablate, all 6 regions, {place:7s} fills: {rate[place]:8.1f} images/s, "
            f"{ratio:.2f}x forward ({verdict}){mark}"
        )
    print(f"(torch threads {torch.get_num_threads()}, loader workers {args.workers}, "
          f"{os.cpu_count()} CPUs)")  # fmt: skip


if __name__ == "__main__":
    main()
