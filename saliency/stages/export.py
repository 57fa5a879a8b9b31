"""``export``: a run's model as ONNX or a ``torch.export`` program, checked against PyTorch.

The exported graph takes the normalized input ``float32 [N, 3, h, w]`` (any N) and returns
the run's logits ``[N, K]`` (one logit: the log-odds of ``classes[1]``). The preprocessing
and the class order go beside it as ``FILE.preprocessing.json`` (``saliency adopt`` reads
that file back). The export is run on a batch of the run's images (onnxruntime for ONNX,
``torch.export.load`` for pt2) and must give PyTorch's logits within :data:`TOLERANCE`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from saliency.configs.model import ExportConfig
from saliency.models.adopted.sources import ONNX_OPSET
from saliency.models.checkpoint import Checkpoint, load_model
from saliency.models.interchange import SAMPLE, sample_batch, write_sidecar
from saliency.models.preprocess import Preprocessing
from saliency.rundir import best_checkpoint, require_run
from saliency.stages.contract import Result, StageContext

FORMATS = ("onnx", "pt2")
TOLERANCE = 1e-4  # max abs difference of the logits, exported vs PyTorch
MAX_BATCH = 4096


@dataclass
class ExportResult:
    path: Path
    preprocessing: Path
    max_abs_difference: float
    n_images: int
    source: str  # what the check ran on: the run's images, or noise when it names none


class _Logits(torch.nn.Module):
    """The run's model as a plain tensor -> tensor module (what exporters want)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def check_batch(
    ckpt: Checkpoint, pre: Preprocessing, run: str | os.PathLike | None = None
) -> tuple[torch.Tensor, str]:
    """Up to :data:`SAMPLE` of the run's test images (else any of its images, else noise;
    ``run``: the run folder, where an adopted run's images may be recorded), normalized:
    ``[n, 3, h, w]``; and what they are, in words."""
    from saliency.models.evaluate import evaluation_rows

    for split in ("test", "all"):
        try:
            rows, _ = evaluation_rows(ckpt, split, run=run)
        except ValueError:
            continue
        x = sample_batch(rows["path"].head(SAMPLE).tolist(), pre)
        return x, f"{len(x)} {split} images of the run"
    return sample_batch([], pre), f"{SAMPLE} noise images (the run names no images)"


def _onnx(net: torch.nn.Module, x: torch.Tensor, path: Path) -> torch.Tensor:
    import onnxruntime as ort

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (x,), str(path), dynamo=False, opset_version=ONNX_OPSET,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )  # fmt: skip
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])


def _pt2(net: torch.nn.Module, x: torch.Tensor, path: Path) -> torch.Tensor:
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    program = torch.export.export(net, (x,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    with torch.no_grad():
        return torch.export.load(str(path)).module()(x)


def run(cfg: ExportConfig) -> ExportResult:
    """Export and check (module docstring); a failed check is an error after writing."""
    if cfg.format not in FORMATS:
        raise ValueError(f"--format {cfg.format}: valid: {', '.join(FORMATS)}")
    run_dir = require_run(cfg.run)
    model, pre, classes, ckpt = load_model(best_checkpoint(run_dir), "cpu")
    model.requires_grad_(False)
    path = Path(cfg.out) if cfg.out else run_dir / "export" / f"model.{cfg.format}"
    path.parent.mkdir(parents=True, exist_ok=True)
    x, source = check_batch(ckpt, pre, run_dir)
    net = _Logits(model).eval()
    with torch.no_grad():
        ref = net(x)
    got = (_onnx if cfg.format == "onnx" else _pt2)(net, x, path)
    diff = float((got - ref).abs().max())
    check = {"max_abs_difference": diff, "tolerance": TOLERANCE, "on": source}
    pre_path = write_sidecar(path, pre, classes, int(ref.shape[1]), check)
    if not diff < TOLERANCE:
        raise ValueError(
            f"the {cfg.format} export differs from PyTorch by {diff:.3g} (tolerance "
            f"{TOLERANCE:g}) on {source}; do not use {path}"
        )
    return ExportResult(path, pre_path, diff, len(x), source)


def run_stage(cfg: ExportConfig, ctx: StageContext) -> Result:
    """The stage contract: export the context's run and check it against PyTorch."""
    res = run(ctx.fill(cfg))
    return Result(res, [
        f"{cfg.format} -> {res.path}",
        f"preprocessing -> {res.preprocessing}",
        f"checked on {res.source}: max abs difference of the logits "
        f"{res.max_abs_difference:.2g} (< {TOLERANCE:g})",
    ])  # fmt: skip
