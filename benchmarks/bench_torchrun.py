"""explain's images per second with 1 and with 2 processes (torchrun), and on one GPU.

A random-weight ResNet-18 run over synthetic faces; each contender runs the same command
from scratch (the maps folder removed), measured end to end (process start, model load,
image decoding, the merge of the parts):

  - ``saliency explain`` in one process (all the machine's threads, and as many as each
    torchrun process gets: what one process of the K does alone);
  - ``torchrun --standalone --nproc_per_node=K -m saliency -- explain`` (one thread each);
  - with CUDA: ``saliency explain --device cuda`` (one GPU).

    .venv/bin/python benchmarks/bench_torchrun.py [--n 192] [--size 96] [--procs 2]

Reports images/s and the ratio to one process. Timings beside another job mean nothing
(two torch jobs on two cores slow each other 8-13x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _run(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} ... failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def make_run(root: Path, n: int, size: int) -> Path:
    """Synthetic faces (every row in ``test``) and a random-weight ResNet-18 run on them."""
    import pandas as pd

    from saliency.data.synth.config import SynthConfig
    from saliency.data.synth.generate import generate
    from saliency.models.checkpoint import file_sha256, save_checkpoint
    from saliency.models.preprocess import Preprocessing
    from saliency.models.zoo import ModelSpec, build_model

    data, run = root / "data", root / "run"
    generate(SynthConfig(n=n, size=size), data)
    df = pd.read_csv(data / "manifest.csv", keep_default_na=False)
    df["split"] = "test"
    df.to_csv(data / "manifest.csv", index=False)
    spec = ModelSpec(arch="resnet18")
    save_checkpoint(run / "checkpoints" / "best.pt", {
        "model": spec.to_dict(), "classes": ["female", "male"],
        "preprocessing": Preprocessing(size=size).to_dict(),
        "state_dict": build_model(spec).state_dict(),
        "data": {"manifest": str(data / "manifest.csv"),
                 "sha256": file_sha256(data / "manifest.csv")},
        "epoch": 0,
    })  # fmt: skip
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=192, help="images")
    ap.add_argument("--size", type=int, default=96, help="input size (px)")
    ap.add_argument("--procs", type=int, default=2, help="processes under torchrun")
    ap.add_argument("--methods", default="gradcam,ig")
    ap.add_argument("--ig-n-steps", default="16")
    ap.add_argument("--rounds", type=int, default=2, help="best of this many runs each")
    args = ap.parse_args()
    import torch

    threads = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp), args.n, args.size)
        explain = ["explain", "--run", str(run), "--methods", args.methods, "--ig-n-steps",
                   args.ig_n_steps, "--workers", "0"]  # fmt: skip
        env = os.environ | {"SALIENCY_PROGRESS": "0"}
        one = [str(BIN / "saliency"), *explain, "--device", "cpu"]
        per = max(1, threads // args.procs)  # each torchrun process's threads
        contenders = {
            "1 process (CPU)": (one, env | {"OMP_NUM_THREADS": str(threads)}),
            f"1 process, {per} thread(s)": (one, env | {"OMP_NUM_THREADS": str(per)}),
            f"torchrun, {args.procs} processes (CPU)": (
                [str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={args.procs}", "-m",
                 "saliency", "--", *explain, "--device", "cpu"],
                env | {"OMP_NUM_THREADS": str(per)}),
        }  # fmt: skip
        if torch.cuda.is_available():
            contenders["1 GPU"] = ([str(BIN / "saliency"), *explain, "--device", "cuda"], env)
        best = dict.fromkeys(contenders, float("inf"))
        for _ in range(args.rounds):  # round-robin: every contender sees the same machine
            for name, (cmd, e) in contenders.items():
                shutil.rmtree(run / "saliency", ignore_errors=True)
                best[name] = min(best[name], _run(cmd, e))
    base = args.n / best["1 process (CPU)"]
    print(f"explain {args.methods} (IG {args.ig_n_steps} steps), {args.n} images at "
          f"{args.size} px, ResNet-18, {threads} CPU threads; end to end, best of "
          f"{args.rounds}")  # fmt: skip
    for name, seconds in best.items():
        r = args.n / seconds
        print(f"  {name:32s} {r:8.1f} images/s   {r / base:5.2f}x one process   ({seconds:.1f} s)")
    if not torch.cuda.is_available():
        print("  (no GPU here: the 1-GPU row and bench_ablate.py's GPU floor need a CUDA machine)")


if __name__ == "__main__":
    main()
