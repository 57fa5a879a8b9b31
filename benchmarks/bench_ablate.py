"""Ablation speed against the plain forward passes it needs, measured in the same run.

``saliency ablate --region all`` classifies each image 7 times (the original and one
variant per region). This script times, interleaved and best of three:

  - ``forward``: those 7 N forward passes alone, in full float32 as ablate runs them, on
    inputs already decoded, filled, resized and on the model's device (the floor: the model's
    own cost);
  - ``ablate``: :func:`saliency.stages.ablate.ablate_run` end to end (decoding, region
    fills, the run's preprocessing, batched forward, result tables), once with the fills in
    DataLoader workers (OpenCV) and once batched on the model's device (torch).

Goal: ablate at least 0.9x the forward passes' speed. The model is a ResNet-18 (output
stride 16) trained for one epoch on synthetic faces (the weights do not change the cost).
Ablate's fixed cost (loading the model and manifest, starting the workers) is in its time;
on a GPU the 7 N passes are so fast that N must be in the thousands for the comparison to be
about throughput rather than start-up, so the script also times one batch alone.

    .venv/bin/python benchmarks/bench_ablate.py [--n 256] [--size 128] [--device cpu]
    python benchmarks/bench_ablate.py --device cuda --workers 8 --n 8192 --batch-size 64
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from saliency.data.synth.config import SynthConfig
from saliency.data.synth.generate import generate
from saliency.models.checkpoint import load_model
from saliency.models.evaluate import evaluation_rows
from saliency.models.preprocess import model_input
from saliency.models.train import TrainConfig, Trainer
from saliency.perturb.variants import Variants, fill_place
from saliency.rundir import best_checkpoint
from saliency.runtime import full_float32_context, resolve_device
from saliency.stages.ablate import AblationConfig, ablate_run


def stacked(items) -> torch.Tensor:
    """Variants items -> their inputs ``uint8 [7 b, S, S, 3]`` (original, then each region)."""
    return torch.cat([item[1][1] for item in items])


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
    generate(SynthConfig(n=args.n, size=args.size, seed=0, cues={"nose": 1.0}), tmp / "data")
    cfg = TrainConfig(
        manifest=str(tmp / "data" / "manifest.csv"), out=str(tmp / "run"), size=args.size,
        epochs=1, workers=args.workers, device=str(device),
    )  # fmt: skip
    Trainer(cfg).fit()
    model, pre, _, ckpt = load_model(best_checkpoint(tmp / "run"), device)
    ab = AblationConfig(split="all", batch_size=args.batch_size, limit=args.n)
    rows, manifest = evaluation_rows(ckpt, "all")
    rows = rows.head(args.n)
    masks = [manifest.parent / m for m in rows["mask"]]
    variants = Variants(rows["path"], masks, ab, pre.size)
    loader = DataLoader(variants, batch_size=64, num_workers=args.workers, collate_fn=stacked)
    stacks = torch.cat(list(loader)).to(device)  # [7 N, S, S, 3] on the model's device
    n = len(rows)
    print(f"{n} images x 7 inputs ({stacks.shape[0]} forward passes) at {pre.size} px on {device}")

    def forward() -> None:  # in full float32, as ablate runs (saliency.runtime)
        with torch.inference_mode(), full_float32_context():
            out = [model(model_input(b, pre)).float() for b in stacks.split(args.batch_size * 7)]
            torch.cat(out).cpu()

    def ablate(place: str, limit: int = args.n):
        cfg = AblationConfig(split="all", batch_size=args.batch_size, limit=limit, fill_on=place)
        return lambda: ablate_run(tmp / "run", cfg, device, workers=args.workers)

    auto = fill_place("auto", device)
    fns = {
        "forward": forward,
        "workers": ablate("workers"),
        "device": ablate("device"),
        "one batch": ablate(auto, args.batch_size),  # start-up plus one batch
    }
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
    for place in ("workers", "device"):
        ratio = rate[place] / rate["forward"]
        verdict = f"goal >= 0.90x: {'met' if ratio >= 0.9 else 'NOT met'}"
        mark = " (auto's choice here)" if place == auto else ""
        print(
            f"ablate, all 6 regions, {place:7s} fills: {rate[place]:8.1f} images/s, "
            f"{ratio:.2f}x forward ({verdict}){mark}"
        )
    print(
        f"ablate's start-up plus one batch of {args.batch_size}: {best['one batch']:.2f} s "
        f"({best['one batch'] / best[auto]:.0%} of the whole ablate time, {auto} fills)"
    )
    print(f"(torch threads {torch.get_num_threads()}, loader workers {args.workers}, "
          f"{os.cpu_count()} CPUs)")  # fmt: skip


if __name__ == "__main__":
    main()
