"""CUDA against CPU: do the maps and the ablation agree across devices? (Needs a GPU.)

For a ResNet-18 (output stride 16) with random weights and batch-norm statistics, at 128 px:
  - cam, gradcam and ig maps on CUDA vs CPU (relative L2 error per map, worst case);
  - IG's completeness error (|sum of map - (f(x) - f(baseline))| / |f(x) - f(baseline)|)
    on CUDA with PyTorch's default TF32 settings and with TF32 switched off;
  - the folded copy's IG on CUDA against the unfolded model's.

    python benchmarks/check_cuda.py
"""

from __future__ import annotations

import copy

import torch

from saliency.methods.fold import fold_batchnorm
from saliency.methods.geometry import grid_geometry
from saliency.methods.registry import IGConfig, explain_batch
from saliency.models import outputs
from saliency.models.preprocess import Preprocessing
from saliency.models.zoo import ModelSpec, build_model


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    """Worst per-map ``||a - b|| / ||b||`` over a batch ``[N, H, W]``."""
    a, b = a.double().cpu().flatten(1), b.double().cpu().flatten(1)
    return float(((a - b).norm(dim=1) / b.norm(dim=1).clamp_min(1e-30)).max())


def randomized(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


def run(model, unit, pre, methods, device, ig, fold=False):
    m = copy.deepcopy(model).to(device).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    geometry = grid_geometry(m, unit.shape[-1])
    prepared = {"ig": fold_batchnorm(m)} if fold else None
    res, _ = explain_batch(
        m, unit.to(device), pre, methods, outputs.predicted, {"ig": ig}, prepared=prepared,
        geometry=geometry,
    )  # fmt: skip
    return res


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: nothing to check")
    torch.manual_seed(0)
    model = randomized(build_model(ModelSpec(arch="resnet18", dropout=0.0))).eval()
    pre = Preprocessing(size=128)
    unit = torch.rand(16, 3, 128, 128)
    ig = IGConfig(n_steps=32)
    methods = ["cam", "gradcam", "ig"]
    cpu = run(model, unit, pre, methods, torch.device("cpu"), ig)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"TF32 defaults: matmul {torch.backends.cuda.matmul.allow_tf32}, "
          f"cudnn conv {torch.backends.cudnn.allow_tf32}")  # fmt: skip
    for tf32 in (True, False):
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        gpu = run(model, unit, pre, methods, torch.device("cuda"), ig)
        same = bool((gpu.logits.argmax(1).cpu() == cpu.logits.argmax(1)).all())
        diff = float((gpu.logits.cpu() - cpu.logits).abs().max())
        print(f"TF32 {'on ' if tf32 else 'off'}: logits max |diff| {diff:.2e}, "
              f"same predictions {same}")  # fmt: skip
        for m in methods:
            err = rel_l2(gpu.maps[m], cpu.maps[m])
            print(f"  {m:8s} CUDA vs CPU relative L2 (worst map): {err:.2e}")
        print(f"  ig completeness error: CUDA max {float(gpu.extras['ig_error'].max()):.2e}, "
              f"CPU max {float(cpu.extras['ig_error'].max()):.2e}")  # fmt: skip
    folded = run(model, unit, pre, ["ig"], torch.device("cuda"), ig, fold=True)
    err = rel_l2(folded.maps["ig"], cpu.maps["ig"])
    print(f"folded IG on CUDA (TF32 off) vs unfolded CPU: {err:.2e}")


if __name__ == "__main__":
    main()
