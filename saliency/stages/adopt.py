"""``adopt``: a run directory from an external classifier (DESIGN.md, "Adopted models").

Writes ``RUN/checkpoints/best.pt`` (a saliency checkpoint whose ``model.arch`` is
``adopted``: the AdoptedNet's weights, classes in output order, the preprocessing and the
``adopted`` record), the record again as ``RUN/model/adopted.json`` (readable without
torch), a copy of an ONNX, pt2 or pickle file under ``RUN/model/``, and the ``adopt`` entry
of ``RUN/config.json``. Every later command reads the run as a trained one.
An ONNX file is checked against onnxruntime on a batch; the difference is recorded.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from saliency.atomic import atomic_write_json
from saliency.data.manifest import read_manifest
from saliency.models.adopted.net import parse_slice
from saliency.models.adopted.record import ARCH, MODEL_DIR, build
from saliency.models.adopted.sources import detect_format, load_source
from saliency.models.checkpoint import file_sha256, save_checkpoint
from saliency.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing, model_input
from saliency.rundir import best_checkpoint, record

SAMPLE = 8  # images in the batch that finds the last block and checks conversions
ONNX_TOLERANCE = 1e-4  # max |onnxruntime - torch| of the outputs, relative to max(1, |out|)
PREPROCESSING_SUFFIX = ".preprocessing.json"  # written beside an export (saliency export)


@dataclass
class AdoptConfig:
    out: str
    classes: list[str] = field(default_factory=list)
    size: int | None = None
    weights: str | None = None
    arch: str | None = None
    function: str | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    output: str = "auto"
    output_slice: str | None = None
    target_layer: str | None = None
    manifest: str | None = None
    trust_pickle: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AdoptResult:
    run: Path
    format: str
    record: dict
    pre: Preprocessing
    classes: list[str]
    n_images: int | None
    notes: list[str] = field(default_factory=list)


def beside(weights: str | None) -> dict | None:
    """The preprocessing file ``saliency export`` wrote beside ``weights``, if any."""
    if not weights:
        return None
    path = Path(str(weights) + PREPROCESSING_SUFFIX)
    return json.loads(path.read_text()) if path.is_file() else None


def settle(cfg: AdoptConfig) -> tuple[Preprocessing, list[str], list[str]]:
    """Preprocessing and classes from the flags, else from an export's file beside the
    weights, else (mean and std) ImageNet's; returns them and notes on what was assumed."""
    notes, info = [], beside(cfg.weights)
    pre_d = (info or {}).get("preprocessing", {})
    classes = list(cfg.classes) or list((info or {}).get("classes", []))
    size = cfg.size or pre_d.get("size")
    if not classes:
        raise ValueError("adopt needs --classes, in the model's output order (e.g. female,male)")
    if not size:
        raise ValueError("adopt needs --size: the input side, in px, the model classifies")
    mean, std = cfg.mean or pre_d.get("mean"), cfg.std or pre_d.get("std")
    if info and not (cfg.mean and cfg.std):
        notes.append(f"preprocessing from {cfg.weights}{PREPROCESSING_SUFFIX}")
    if mean is None or std is None:
        notes.append(
            "no --mean/--std: ImageNet's (torchvision's weights expect them); pass the ones "
            "the model was trained with, in 0-1 pixel units"
        )
    pre = Preprocessing(
        size=int(size),
        mean=tuple(float(v) for v in (mean or IMAGENET_MEAN)),
        std=tuple(float(v) for v in (std or IMAGENET_STD)),
    )
    return pre, classes, notes


def sample_batch(paths: list, pre: Preprocessing) -> torch.Tensor:
    """Normalized inputs ``[n, 3, S, S]``: the first :data:`SAMPLE` of ``paths``, else (no
    paths) seeded noise images."""
    if paths:
        from saliency.models.loader import ImageSource

        paths = list(paths)[:SAMPLE]
        images, _ = next(ImageSource(paths, pre, workers=0).batches(np.arange(len(paths)), SAMPLE))
        return model_input(images, pre)
    gen = torch.Generator().manual_seed(0)
    unit = torch.rand((SAMPLE, pre.size, pre.size, 3), generator=gen)
    return model_input((unit * 255).to(torch.uint8), pre)


def onnx_difference(path: Path, net: torch.nn.Module, x: torch.Tensor) -> float:
    """Max |onnxruntime - converted module| of the raw outputs on ``x``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    ref = torch.from_numpy(sess.run(None, {name: x.numpy()})[0])
    with torch.no_grad():
        out = net(x)
    out = out[0] if isinstance(out, list | tuple) else out
    return float((ref - out.reshape(ref.shape)).abs().max())


def onnx_input_check(path: Path, size: int) -> None:
    """A clear error when the ONNX input fixes a batch of one or another image size."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {t.name for t in graph.initializer}
    first = next(i for i in graph.input if i.name not in inits)
    dims = [
        d.dim_value if d.HasField("dim_value") else None for d in first.type.tensor_type.shape.dim
    ]
    if len(dims) != 4:
        raise ValueError(f"{path}: the input has {len(dims)} dimensions; adopt needs [N, 3, H, W]")
    if dims[0] is not None:
        raise ValueError(
            f"{path} fixes the batch size to {dims[0]}; export it again with a dynamic batch "
            "dimension (torch.onnx.export(..., dynamic_axes={'input': {0: 'batch'}}))"
        )
    if dims[2:] != [None, None] and dims[2:] != [size, size]:
        raise ValueError(f"{path} takes {dims[2]}x{dims[3]} px inputs: pass --size {dims[2]}")


def _data_record(manifest: Path | None) -> dict:
    if manifest is None:
        return {"manifest": None, "sha256": None, "n_train": 0, "n_val": 0, "seeded_split": False}
    return {
        "manifest": str(manifest.resolve()),
        "sha256": file_sha256(manifest),
        "n_train": 0,
        "n_val": 0,
        "seeded_split": False,
        "unsplit": "test",  # rows without a split: the model never trained on them
    }


def _check_reload(out: Path, model: torch.nn.Module, x: torch.Tensor) -> None:
    """The run's checkpoint must rebuild the very model that was adopted."""
    from saliency.models.checkpoint import load_model

    again = load_model(best_checkpoint(out))[0]
    with torch.no_grad():
        a, b = model(x), again(x)
    if not torch.allclose(a, b, rtol=1e-5, atol=1e-5):
        raise RuntimeError(f"{out}: the stored model does not rebuild the adopted one; a bug")


def run(cfg: AdoptConfig) -> AdoptResult:
    """Adopt the model ``cfg`` names into the run folder ``cfg.out``."""
    if best_checkpoint(cfg.out).is_file():
        raise ValueError(
            f"{cfg.out} already holds a model (checkpoints/best.pt); adopt into a new folder"
        )
    pre, classes, notes = settle(cfg)
    weights = Path(cfg.weights) if cfg.weights else None
    manifest = Path(cfg.manifest) if cfg.manifest else None
    if manifest is not None and not manifest.is_file():
        raise FileNotFoundError(f"--manifest {manifest} does not exist")
    fmt = detect_format(weights, cfg.arch, cfg.function)
    if fmt == "onnx" and weights.is_file():
        onnx_input_check(weights, pre.size)
    net = load_source(fmt, weights, cfg.arch, cfg.function, cfg.trust_pickle)
    images = read_manifest(manifest, classes) if manifest is not None else None
    x = sample_batch([] if images is None else images.abspaths()[:SAMPLE], pre)
    try:
        model, rec = build(
            net, x, len(classes), cfg.output, parse_slice(cfg.output_slice), cfg.target_layer
        )
    except RuntimeError as exc:  # shapes: the model wants another size, and so on
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(f"the model fails on {pre.size} px inputs ({why}); check --size") from exc
    out = Path(cfg.out)
    rec |= {"format": fmt, "arch": cfg.arch, "function": cfg.function, "source": str(weights or "")}
    if fmt == "onnx":
        rec["onnxruntime_max_abs_difference"] = diff = onnx_difference(weights, net, x)
        with torch.no_grad():
            scale = max(1.0, float(model(x).abs().max()))
        if diff > ONNX_TOLERANCE * scale:
            raise ValueError(
                f"onnx2torch's conversion of {weights} differs from onnxruntime by {diff:.3g}; "
                "the converted model is not the model: report it to onnx2torch"
            )
    if fmt == "torchvision":
        rec["raw_outputs"] = int(
            [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1].out_features
        )
    (out / MODEL_DIR).mkdir(parents=True, exist_ok=True)
    if fmt in ("onnx", "pt2", "pickle"):
        copy = out / MODEL_DIR / f"source{weights.suffix}"
        shutil.copyfile(weights, copy)
        rec["file"], rec["file_abs"] = f"{MODEL_DIR}/{copy.name}", str(copy.resolve())
        rec["sha256"] = file_sha256(copy)
    if fmt == "pickle":
        rec["trusted_pickle"] = True
    k = rec["n_outputs"]
    ckpt = {
        "model": {"arch": ARCH, "n_outputs": k, "loss": "bce" if k == 1 else "ce",
                  "output_stride": None},
        "classes": classes,
        "preprocessing": pre.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "train_config": {"seed": 0, "adopted": True},
        "data": _data_record(manifest),
        "epoch": None,
        "val_loss": None,
        "val_accuracy": None,
        "adopted": rec,
    }  # fmt: skip
    save_checkpoint(best_checkpoint(out), ckpt)
    atomic_write_json(out / MODEL_DIR / "adopted.json", rec)  # readable without torch
    record(out, "adopt", cfg.to_dict() | {"format": fmt})
    _check_reload(out, model, x)
    n = len(images.df) if images is not None else None
    return AdoptResult(out, fmt, rec, pre, classes, n, notes)
