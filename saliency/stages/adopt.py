"""``adopt``: a run directory from an external classifier (DESIGN.md, "Adopted models").

Writes ``RUN/checkpoints/best.pt`` (a saliency checkpoint whose ``model.arch`` is
``adopted``: the AdoptedNet's weights, classes in output order, the preprocessing and the
``adopted`` record), the record again as ``RUN/model/adopted.json`` (readable without
torch), a copy of an ONNX, pt2 or pickle file under ``RUN/model/``, and the ``adopt`` entry
of ``RUN/config.json``. Every later command reads the run as a trained one.
An ONNX file is checked against onnxruntime on a batch; the difference is recorded.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from saliency.atomic import atomic_write_json
from saliency.configs.model import AdoptConfig
from saliency.data.manifest import read_manifest
from saliency.imsize import as_size, hw, plain_size
from saliency.models.adopted.channels import LIMIT, ChannelCheck, channel_check
from saliency.models.adopted.hub import hub_folder, timm_name
from saliency.models.adopted.net import parse_slice
from saliency.models.adopted.record import MODEL_DIR, build
from saliency.models.adopted.sources import (
    detect_format,
    load_source,
    onnx_check,
    onnx_input_check,
    onnx_output_names,
)
from saliency.models.adopted.tokens import hf_layout, timm_layout
from saliency.models.checkpoint import Checkpoint, DataRecord, file_sha256, save_checkpoint
from saliency.models.interchange import PREPROCESSING_SUFFIX, SAMPLE, beside, sample_batch
from saliency.models.preprocess import COLORS, IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from saliency.rundir import best_checkpoint, record
from saliency.stages.contract import Result, StageContext


@dataclass
class AdoptResult:
    run: Path
    format: str
    record: dict
    pre: Preprocessing
    classes: list[str]
    n_images: int | None
    notes: list[str] = field(default_factory=list)


def _hub_defaults(hub) -> dict:
    """A Hugging Face folder's preprocessing and classes, as an export's sidecar gives them
    (class names only when the folder names them: not transformers' LABEL_0, LABEL_1)."""
    named = [c for c in hub.classes if not str(c).startswith("LABEL_")]
    pre = {k: v for k, v in (("size", hub.size), ("mean", hub.mean), ("std", hub.std)) if v}
    return {"preprocessing": pre, "classes": named if len(named) == len(hub.classes) else []}


def settle(cfg: AdoptConfig, hub=None) -> tuple[Preprocessing, list[str], list[str]]:
    """Preprocessing and classes from the flags, else from an export's file beside the
    weights or the Hugging Face folder ``hub`` (:class:`~saliency.models.adopted.hub.
    HubFolder`), else (mean and std) ImageNet's; returns them and notes on what was
    assumed."""
    notes = list(hub.notes) if hub else []
    info = _hub_defaults(hub) if hub else beside(cfg.weights)
    pre_d = (info or {}).get("preprocessing", {})
    classes = list(cfg.classes) or list((info or {}).get("classes", []))
    size = cfg.size or pre_d.get("size")
    if not classes:
        raise ValueError("adopt needs --classes, in the model's output order (e.g. female,male)")
    if not size:
        raise ValueError(
            "adopt needs --size: the input size, in px, the model classifies "
            "(one side, or HEIGHTxWIDTH)"
        )
    mean, std = cfg.mean or pre_d.get("mean"), cfg.std or pre_d.get("std")
    if hub and not (cfg.mean and cfg.std):
        where = "preprocessor_config.json" if hub.kind == "transformers" else "config.json"
        notes.append(f"size, mean and std from {Path(cfg.weights) / where}")
    elif info and not (cfg.mean and cfg.std):
        notes.append(f"preprocessing from {cfg.weights}{PREPROCESSING_SUFFIX}")
    if mean is None or std is None:
        notes.append(
            "no --mean/--std: ImageNet's (torchvision's weights expect them); pass the ones "
            "the model was trained with, in 0-1 pixel units"
        )
    color = str(cfg.color or pre_d.get("color") or "rgb").upper()
    if color not in COLORS:
        raise ValueError(f"--color must be rgb or bgr, not {cfg.color or pre_d.get('color')!r}")
    pre = Preprocessing(
        size=as_size(size),
        mean=tuple(float(v) for v in (mean or IMAGENET_MEAN)),
        std=tuple(float(v) for v in (std or IMAGENET_STD)),
        color=color,
    )
    return pre, classes, notes


def _data_record(manifest: Path | None) -> DataRecord:
    if manifest is None:
        return DataRecord(None, None)
    # rows without a split are test rows: the model never trained on them
    return DataRecord(str(manifest.resolve()), file_sha256(manifest), unsplit="test")


def _channels(model: torch.nn.Module, images, pre: Preprocessing) -> ChannelCheck:
    """The channel-order check on the manifest's first :data:`LIMIT` labeled images."""
    from saliency.models.loader import ImageSource

    rows = np.arange(min(LIMIT, len(images.df)))
    source = ImageSource(images.abspaths()[: len(rows)], pre, cache_bytes=0, workers=0)
    batch, _ = next(source.batches(rows, len(rows)))
    return channel_check(model, batch, images.label_index()[rows], pre)


def _hub_record(fmt: str, cfg: AdoptConfig, hub, net: torch.nn.Module) -> dict:
    """What rebuilds a timm or Hugging Face model from the checkpoint: the timm name and
    output count, or the transformers config; and the input size it was built for."""
    if fmt == "timm" or (hub is not None and hub.kind == "timm"):
        name = timm_name(cfg.arch) if fmt == "timm" else hub.config["architecture"]
        n_out = int(net.get_classifier().out_features)
        return {"timm_name": name, "raw_outputs": n_out, "hub_kind": hub.kind if hub else None}
    if hub is not None:
        return {"hf_config": hub.config, "hub_kind": hub.kind}
    return {}


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
    weights = Path(cfg.weights) if cfg.weights else None
    manifest = Path(cfg.manifest) if cfg.manifest else None
    if manifest is not None and not manifest.is_file():
        raise FileNotFoundError(f"--manifest {manifest} does not exist")
    fmt = detect_format(weights, cfg.arch, cfg.function)
    hub = hub_folder(weights) if fmt == "huggingface" else None
    pre, classes, notes = settle(cfg, hub)
    if hub is not None and hub.kind == "transformers" and pre.hw != hw(int(hub.size)):
        raise ValueError(f"{weights} is built for {hub.size} px inputs: pass --size {hub.size}")
    if fmt == "onnx" and weights.is_file():
        onnx_input_check(weights, pre.size)
    if hub is not None:
        net = hub.net
    else:
        net = load_source(fmt, weights, cfg.arch, cfg.function, cfg.trust_pickle, pre.size)
    images = read_manifest(manifest, classes) if manifest is not None else None
    x = sample_batch([] if images is None else images.abspaths()[:SAMPLE], pre)
    layout = timm_layout(net) or (hf_layout(net, hub.config) if hub is not None else None)
    try:
        names = onnx_output_names(weights) if fmt == "onnx" else None
        model, rec = build(net, x, len(classes), cfg.output, parse_slice(cfg.output_slice),
                           cfg.target_layer, cfg.output_name, names, layout)  # fmt: skip
    except RuntimeError as exc:  # shapes: the model wants another size, and so on
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(f"the model fails on {pre.text} inputs ({why}); check --size") from exc
    out = Path(cfg.out)
    rec |= {"format": fmt, "arch": cfg.arch, "function": cfg.function, "source": str(weights or ""),
            "size": plain_size(pre.size)}  # fmt: skip
    if fmt == "onnx":
        diff = onnx_check(weights, net, model, x, rec["output_index"])
        rec["onnxruntime_max_abs_difference"] = diff
    if fmt == "torchvision":
        rec["raw_outputs"] = int(
            [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1].out_features
        )
    rec |= _hub_record(fmt, cfg, hub, net)
    if images is not None:
        rec["channel_check"] = _channels(model, images, pre).to_dict()
    (out / MODEL_DIR).mkdir(parents=True, exist_ok=True)
    if fmt in ("onnx", "pt2", "pickle"):
        copy = out / MODEL_DIR / f"source{weights.suffix}"
        shutil.copyfile(weights, copy)
        rec["file"], rec["file_abs"] = f"{MODEL_DIR}/{copy.name}", str(copy.resolve())
        rec["sha256"] = file_sha256(copy)
    if fmt == "pickle":
        rec["trusted_pickle"] = True
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    ckpt = Checkpoint(None, classes, pre, state, _data_record(manifest), adoption=rec)
    save_checkpoint(best_checkpoint(out), ckpt)
    atomic_write_json(out / MODEL_DIR / "adopted.json", rec)  # readable without torch
    record(out, "adopt", cfg.to_dict() | {"format": fmt})
    _check_reload(out, model, x)
    n = len(images.df) if images is not None else None
    return AdoptResult(out, fmt, rec, pre, classes, n, notes)


def lines(res: AdoptResult) -> list[str]:
    """What ``adopt`` made of the model: classes, outputs, preprocessing, Grad-CAM layer,
    whether CAM applies, the ONNX check, and the next command."""
    rec = res.record
    out = [f"adopted {res.format} model -> {res.run}"] + [f"note: {n}" for n in res.notes]
    sl = rec["output_slice"]
    sliced = f", outputs {sl[0]}:{sl[1]}" if sl else ""
    if rec.get("output_name") is not None:
        sliced = f", output {rec['output_name']} of {len(rec['outputs'])}{sliced}"
    out.append(f"classes: {', '.join(res.classes)} ({rec['n_outputs']} logit(s){sliced})")
    out.append(f"explained: {rec['explained']} ({rec['output_how']})")
    pre = res.pre
    out.append(f"preprocessing: {pre.text}, {pre.color}, mean {list(pre.mean)}, std "
               f"{list(pre.std)}")  # fmt: skip
    if "channel_check" in rec:
        ch = rec["channel_check"]
        out.append(f"channel order: accuracy {ch['accuracy']:.1%} as {ch['color']}, "
                   f"{ch['other_accuracy']:.1%} as {ch['other']} ({ch['n']} images)")  # fmt: skip
        if ch["other_better"]:
            again = f"adopt it again with --color {ch['other'].lower()}"
            out.append(f"warning: the model reads {ch['other']} clearly better (McNemar p = "
                       f"{ch['p']:.2g}): {again}")  # fmt: skip
    grid = "x".join(str(g) for g in rec["grid"])
    tok = rec.get("tokens")
    if tok:
        pooling = "class-token" if tok["pool"] == "token" else f"{tok['pool']}-pooled"
        out.append(f"Grad-CAM layer: {rec['layer']}, its patch tokens as a {grid} grid "
                   f"({rec['channels']} channels; {tok['prefix']} class/register token(s) "
                   f"dropped; {pooling} transformer)")  # fmt: skip
    else:
        out.append(f"Grad-CAM layer: {rec['layer']} ({rec['channels']} channels, {grid} grid)")
    if rec["cam_ready"]:
        dev = rec["cam_deviation"]
        out.append(f"CAM-ready: logits = linear map of the pooled layer (max deviation {dev:.2g})")
    else:
        out.append(f"cam refused: {rec['cam_reason']}; gradcam, ig and ablation work")
    if "onnxruntime_max_abs_difference" in rec:
        diff = rec["onnxruntime_max_abs_difference"]
        out.append(f"onnx2torch vs onnxruntime: max abs difference {diff:.2g}")
    if res.n_images is None:
        return out + [f"next: saliency evaluate --run {res.run} --manifest M"]
    return out + [f"{res.n_images} images; next: saliency evaluate --run {res.run}"]


def run_stage(cfg: AdoptConfig, ctx: StageContext) -> Result:
    """The stage contract: adopt into the context's run folder (``out``); a half-made
    adoption there (no checkpoint yet) is cleared first, so an interrupted one starts over."""
    cfg = ctx.fill(cfg)
    if not best_checkpoint(cfg.out).is_file() and (Path(cfg.out) / MODEL_DIR).is_dir():
        shutil.rmtree(Path(cfg.out) / MODEL_DIR)
    res = run(cfg)
    return Result(res, lines(res))
