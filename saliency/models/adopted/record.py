"""An adopted model in a run: from the external module to an :class:`AdoptedNet` and its
checkpoint record, and back from the checkpoint (``load_model``).

The checkpoint holds the AdoptedNet's state dict and ``adopted``: the format, where the
source is (a copy under ``RUN/model/`` for onnx, pt2 and pickles; torchvision models and
functions are rebuilt from their name), the cut node, the output kind and slice, what was
cut off the end, and the CAM-readiness verdict.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from saliency.imsize import as_size, hw
from saliency.models.adopted.graph import cut_model
from saliency.models.adopted.net import (
    AdoptedNet,
    CamCheck,
    cam_check,
    detect_output,
    to_logits,
)
from saliency.models.adopted.outputs import choose, list_outputs
from saliency.models.adopted.sources import load_source
from saliency.models.adopted.tokens import CAM_REASON, TokenLayout

MODEL_DIR = "model"  # RUN/model/: the copy of an adopted file


def _token_record(cut, x: torch.Tensor, layout: TokenLayout) -> dict:
    """The prefix (class and register tokens) of a transformer cut at ``layout.target``."""
    with torch.no_grad():
        out = cut.features(x)
    t = out[0] if isinstance(out, tuple | list) else out
    h, w = layout.grid
    if t.ndim != 3 or t.shape[1] < h * w:
        raise ValueError(
            f"{layout.target} gives {tuple(t.shape)}, not tokens [N, T, D] with T >= {h * w} "
            "patches; name the layer with --target-layer"
        )
    return layout.to_dict() | {"prefix": int(t.shape[1] - h * w), "grid": [h, w]}


def build(
    net: nn.Module,
    x: torch.Tensor,
    n_classes: int,
    output: str = "auto",
    out_slice: tuple[int, int] | None = None,
    target: str | None = None,
    output_name: str | None = None,
    names: list[str] | None = None,
    layout: TokenLayout | None = None,
) -> tuple[AdoptedNet, dict]:
    """Cut ``net`` (at ``target`` or its last block, found by running ``x [N, 3, h, w]``,
    normalized), keep output ``output_name`` of a model with several (``names``: an ONNX
    file's output names), settle the output kind, check CAM-readiness; returns the model
    and the record for the checkpoint. A transformer (``layout``) is cut where its class
    evidence flows through the patch tokens (models.adopted.tokens); cam is refused."""
    with torch.no_grad():
        outputs = list_outputs(net(x), names)
    index = choose(outputs, output_name)
    cut = cut_model(net, x, target or (layout and layout.target), output=index, carry=bool(layout))
    tokens = _token_record(cut, x, layout) if layout else None
    model = AdoptedNet(cut.features, cut.rest, None, 0, "logits", out_slice, tokens=tokens)
    with torch.no_grad():
        maps = model.forward_features(x)
        raw = model.rest_outputs(maps)
    if cut.softmax:  # cut off: what is left are logits, whatever the model returned
        output, how = "logits", f"{cut.softmax} cut off"
    elif output == "auto":
        output, how = detect_output(raw, out_slice), "detected"
    else:
        how = "given"
    k = to_logits(raw, output, out_slice).shape[1]
    if k not in (n_classes, 1) or (k == 1 and n_classes != 2):
        width = f"{k} outputs" + (" after the slice" if out_slice else "")
        raise ValueError(
            f"the model gives {width}, and --classes names {n_classes}: name one class per "
            "output in output order, or take the gender outputs with --output-slice START:STOP"
        )
    model = AdoptedNet(cut.features, cut.rest, None, k, output, out_slice, tokens=tokens)
    if tokens:
        check = CamCheck(False, None, CAM_REASON, None)
    else:
        check = cam_check(model.raw_head, maps, cut.layer)
    if check.ready:
        model = AdoptedNet(cut.features, None, check.fc, k, output, out_slice)
    else:
        model.cam_refusal = check.reason
    record = {
        "target_layer": target,
        "outputs": [[o.name, list(o.shape)] for o in outputs],
        "output_name": output_name,
        "output_index": index,
        "tokens": tokens,
        "node": cut.node,
        "layer": cut.layer,
        "cut_off": cut.softmax,
        "output": output,
        "output_how": how,
        "output_slice": list(out_slice) if out_slice else None,
        "explained": _explained(output, cut.softmax),
        "n_outputs": k,
        "channels": int(maps.shape[1]),
        "grid": [int(maps.shape[2]), int(maps.shape[3])],
        "cam_ready": check.ready,
        "cam_reason": check.reason,
        "cam_deviation": check.deviation,
    }
    return model, record


def _explained(output: str, cut_off: str | None) -> str:
    if output == "logits":
        return f"logits, before the model's trailing {cut_off}" if cut_off else "logits"
    if output == "log-probabilities":
        return "log-probabilities (the model's own output)"
    return "log-probabilities (the log of the model's probabilities: its softmax is not separable)"


def source_file(ckpt_path: str | os.PathLike, rec: dict) -> Path | None:
    """The adopted file: the copy in the checkpoint's run, else where it was at adopt time."""
    if not rec.get("file"):
        return None
    run = Path(ckpt_path).resolve().parent.parent
    local = run / rec["file"]
    return local if local.is_file() else Path(rec["file_abs"])


def rebuild(
    rec: dict, state_dict: dict[str, torch.Tensor], ckpt_path: str | os.PathLike
) -> AdoptedNet:
    """The AdoptedNet of an adopted checkpoint (at ``ckpt_path``): its adoption record
    ``rec`` and its weights ``state_dict``."""
    fmt = rec["format"]
    tokens = rec.get("tokens")
    if fmt == "torchvision":  # the architecture from its name; weights from the checkpoint
        net = _torchvision_shell(rec["arch"], rec["raw_outputs"])
    elif fmt == "timm" or (fmt == "huggingface" and rec.get("hub_kind") == "timm"):
        from saliency.models.adopted.hub import timm_shell

        net = timm_shell(rec["timm_name"], rec["raw_outputs"], as_size(rec["size"]))
    elif fmt == "huggingface":
        from saliency.models.adopted.hub import transformers_net

        net = transformers_net(rec["hf_config"], None, rec["size"])
    elif fmt == "function":
        net = load_source(fmt, None, function=rec["function"])
    else:  # the file itself: a graph (onnx, pt2) or a pickle trusted at adopt time
        net = load_source(fmt, source_file(ckpt_path, rec), trust_pickle=True)
    # a transformer is found again by its module path (an exported graph's node names are
    # the exporter's); other models by the recorded node
    target = tokens["target"] if tokens else rec["target_layer"]
    node = None if tokens else rec["node"]
    # a model torch.fx cannot trace was exported at adopt time: again, on the same size
    example = torch.zeros(2, 3, *hw(rec["size"])) if rec.get("size") else None
    cut = cut_model(net, example, target, node, rec.get("output_index"), carry=bool(tokens))
    fc = None
    if rec["cam_ready"]:
        fc = nn.Linear(rec["channels"], rec["n_outputs"])
    slice_ = tuple(rec["output_slice"]) if rec["output_slice"] else None
    rest = None if fc is not None else cut.rest
    model = AdoptedNet(cut.features, rest, fc, rec["n_outputs"], rec["output"], slice_,
                       rec["cam_reason"], tokens=tokens)  # fmt: skip
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise ValueError(f"{ckpt_path}: its weights do not fit the adopted model ({exc})") from exc
    return model


def _torchvision_shell(arch: str, n_out: int) -> nn.Module:
    import torchvision

    net = torchvision.models.get_model(arch, weights=None, num_classes=n_out)
    return net.eval().requires_grad_(False)
