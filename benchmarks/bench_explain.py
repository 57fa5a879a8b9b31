"""Attribution speed against plain inference and the peers, measured in the same run.

ResNet-18 (output stride 16) at 128 px on CPU or CUDA:
  - plain forward inference (inference_mode), our ``cam`` and ``gradcam`` (explain's shared
    pass), pytorch-grad-cam's GradCAM batched and one image at a time (the reference
    study's way), our ``ig`` and captum's IntegratedGradients at the same n_steps/method;
  - anonymous memory of ``saliency explain`` (gradcam) after 500 and after 5,000 images
    (the memory-mapped maps are file pages, not anonymous memory).

    .venv/bin/python benchmarks/bench_explain.py            # speed only
    .venv/bin/python benchmarks/bench_explain.py --memory   # also the 500 vs 5,000 check
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from saliency.methods.base import target_scores
from saliency.methods.fold import fold_batchnorm
from saliency.methods.geometry import grid_geometry
from saliency.methods.registry import IGConfig, explain_batch
from saliency.models import outputs
from saliency.models.preprocess import Preprocessing, normalize
from saliency.models.zoo import ModelSpec, build_model


def rate(fn, n_images: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` images per second of ``fn()`` over ``n_images``."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return n_images / best


def interleaved_rates(fns: dict, n_images: int, rounds: int = 3) -> dict[str, float]:
    """Best-of-``rounds`` images per second of each function, run round-robin so that every
    contender sees the same machine state (after one warm-up each)."""
    best = dict.fromkeys(fns, float("inf"))
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: n_images / t for name, t in best.items()}


def speed(device: torch.device, n: int, batch: int, ig_steps: int, ig_n: int) -> None:
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

    torch.manual_seed(0)
    model = build_model(ModelSpec(arch="resnet18", dropout=0.0)).to(device).eval()
    pre = Preprocessing(size=128)
    unit = torch.rand(n, 3, 128, 128, device=device)
    batches = unit.split(batch)

    def forward():
        with torch.inference_mode():
            for u in batches:
                model(normalize(u, pre))

    start = time.perf_counter()
    geometry = grid_geometry(model, 128)  # once per run, as explain does
    probe_s = time.perf_counter() - start

    def ours(methods):
        def go():
            for p in model.parameters():
                p.requires_grad_(False)
            for u in batches:
                explain_batch(model, u, pre, methods, outputs.predicted, geometry=geometry)

        return go

    def library(one_at_a_time: bool):
        def go():
            for p in model.parameters():
                p.requires_grad_(True)
            with pgc.GradCAM(model=model, target_layers=[model.features.layer4[-1]]) as cam:
                chunks = unit.split(1) if one_at_a_time else batches
                for u in chunks:
                    x = normalize(u, pre)
                    cam(input_tensor=x, targets=[BinaryClassifierOutputTarget(1)] * len(x))

        return go

    r_fwd = rate(forward, n)
    r_cam = rate(ours(["cam"]), n)
    r_gc = rate(ours(["gradcam"]), n)
    r_lib = rate(library(False), n)
    r_lib1 = rate(library(True), n, repeats=1)
    tf32 = torch.backends.cudnn.allow_tf32 if device.type == "cuda" else False
    print(
        f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}"
        f", torch {torch.__version__}, cudnn tf32 {tf32}), {torch.get_num_threads()} threads, "
        f"{n} images, batch {batch}"
    )
    print(f"receptive-field probe    {probe_s:8.2f} s once per run: {geometry.offset} offset")
    print(f"plain forward            {r_fwd:8.1f} img/s")
    print(
        f"saliency cam             {r_cam:8.1f} img/s   {r_cam / r_fwd:5.2f}x forward (goal >= 0.9)"
    )
    print(
        f"saliency gradcam         {r_gc:8.1f} img/s   {r_gc / r_fwd:5.2f}x forward (goal >= 0.9)"
    )
    print(f"pytorch-grad-cam batched {r_lib:8.1f} img/s   ours {r_gc / r_lib:5.2f}x (goal >= 2)")
    print(
        f"pytorch-grad-cam 1 by 1  {r_lib1:8.1f} img/s   ours {r_gc / r_lib1:5.2f}x (goal >= 3.5)"
    )

    ig_speed(model, unit[: min(n, ig_n)], pre, ig_steps)


def ig_speed(model, unit: torch.Tensor, pre: Preprocessing, ig_steps: int) -> None:
    """Our IG as explain runs it (batch norm folded) and exactly (the model as stored),
    against captum's IntegratedGradients; map agreement, also against float64 IG."""
    from captum.attr import IntegratedGradients

    m = len(unit)
    for p in model.parameters():
        p.requires_grad_(False)
    cfg = IGConfig(n_steps=ig_steps, internal_batch=128)
    x = normalize(unit, pre)
    with torch.no_grad():
        target = outputs.predicted(model(x))
    maps = {}
    folded = fold_batchnorm(model)  # as explain does for IG

    def ours(name, ig_model):
        def go():
            res, _ = explain_batch(
                model, unit, pre, ["ig"], lambda z: target, {"ig": cfg},
                prepared={"ig": ig_model} if ig_model is not None else None,
            )  # fmt: skip
            maps[name] = res.maps["ig"]

        return go

    base = normalize(torch.zeros_like(unit[:1]), pre)

    def captum(net, inputs, baseline, t, name="captum"):
        ig = IntegratedGradients(lambda inp, tt: target_scores(net(inp), tt))
        attr = ig.attribute(
            inputs,
            baseline.expand_as(inputs),
            additional_forward_args=(t,),
            n_steps=ig_steps,
            method="gausslegendre",
            internal_batch_size=256,
        )
        maps[name] = attr.sum(dim=1)

    r = interleaved_rates(
        {
            "folded": ours("folded", folded),
            "exact": ours("exact", None),
            "captum": lambda: captum(model, x, base, target),
        },
        m,
    )
    r_fold, r_exact, r_cap = r["folded"], r["exact"], r["captum"]
    print(
        f"saliency ig (explain)    {r_fold:8.2f} img/s   {r_fold / r_cap:5.2f}x captum "
        "(goal >= 1.2)   batch norm folded, channels_last"
    )
    print(
        f"saliency ig --no-fold    {r_exact:8.2f} img/s   {r_exact / r_cap:5.2f}x captum"
        "   the model as stored: captum's arithmetic"
    )
    print(f"captum ig                {r_cap:8.2f} img/s   n_steps {ig_steps}, gausslegendre")

    def rel(a, b):  # max relative and relative L2 difference
        a, b = a.double().cpu(), b.double().cpu()
        return float((a - b).abs().max() / b.abs().max()), float((a - b).norm() / b.norm())

    for name in ("exact", "folded"):
        mx, l2 = rel(maps[name], maps["captum"])
        print(f"ig {name:6s} vs captum    max relative {mx:.1e}, relative L2 {l2:.1e} (goal 1e-4)")
    k = min(m, 4)  # float64 IG: the arithmetic's own error, on a few images
    model64 = copy.deepcopy(model).double()
    captum(model64, x[:k].double(), base.double(), target[:k], "f64")
    for name in ("captum", "exact", "folded"):
        _, l2 = rel(maps[name][:k], maps["f64"])
        print(f"ig {name:6s} vs float64   relative L2 {l2:.1e} (float32's own error)")


MEMORY_CHILD = """
import sys, torch
from saliency.stages.explain import ExplainConfig, explain_run
run, limit = sys.argv[1], int(sys.argv[2])
explain_run(run, ExplainConfig(split="all", methods=["gradcam"], limit=limit, batch_size=64),
            torch.device("cpu"), workers=2, overwrite=True)
status = open("/proc/self/status").read()
print([l for l in status.splitlines() if l.startswith("RssAnon")][0].split()[1])
"""


def memory(n_big: int = 5000, n_small: int = 500) -> None:
    from saliency.data.synth.config import SynthConfig
    from saliency.data.synth.generate import generate
    from saliency.models.checkpoint import file_sha256, save_checkpoint
    from saliency.models.train import TrainConfig

    with tempfile.TemporaryDirectory() as tmp:
        data, run = Path(tmp) / "data", Path(tmp) / "run"
        generate(SynthConfig(n=n_big, size=128), data)
        spec = ModelSpec(arch="resnet18")
        cfg = TrainConfig(manifest=str(data / "manifest.csv"), out=str(run))
        save_checkpoint(
            run / "checkpoints" / "best.pt",
            {
                "model": spec.to_dict(),
                "classes": ["female", "male"],
                "preprocessing": Preprocessing(size=128).to_dict(),
                "state_dict": build_model(spec).state_dict(),
                "train_config": cfg.to_dict(),
                "data": {
                    "manifest": str(data / "manifest.csv"),
                    "sha256": file_sha256(data / "manifest.csv"),
                },
                "epoch": 0,
            },
        )
        kib = {}
        for n in (n_small, n_big):
            out = subprocess.run(
                [sys.executable, "-c", MEMORY_CHILD, str(run), str(n)],
                capture_output=True,
                text=True,
                check=True,
            )
            kib[n] = int(out.stdout.strip().splitlines()[-1])
    print(f"anonymous memory after {n_small} gradcam images: {kib[n_small] / 1024:7.1f} MiB")
    print(
        f"anonymous memory after {n_big} gradcam images: {kib[n_big] / 1024:7.1f} MiB   "
        f"ratio {kib[n_big] / kib[n_small]:.2f} (goal <= 1.2)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ig-steps", type=int, default=32)
    ap.add_argument("--ig-n", type=int, default=16, help="images for the IG comparison")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--memory", action="store_true")
    args = ap.parse_args()
    speed(torch.device(args.device), args.n, args.batch, args.ig_steps, args.ig_n)
    if args.memory:
        memory()


if __name__ == "__main__":
    main()
