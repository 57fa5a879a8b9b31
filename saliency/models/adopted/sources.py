"""Read an external classifier into an ``nn.Module`` (DESIGN.md, "Adopted models").

Formats: ``torchvision`` (a state dict for a torchvision classifier named by ``arch``; its
output size read from the weights; ``module.`` and ``_orig_mod.`` prefixes and
``{"state_dict": ...}`` wrappers undone), ``timm`` (``arch`` ``timm:NAME`` and a state dict)
and ``huggingface`` (a local folder; both in models.adopted.hub), ``function``
(``module:function`` returning an ``nn.Module``, optionally with a state dict), ``onnx``
(converted with onnx2torch, so gradients flow), ``pt2`` (a ``torch.export`` program) and
``pickle`` (a whole pickled model, loaded only when the user trusts it: unpickling runs code
from the file). A state dict may be a ``.safetensors`` file wherever one is read.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import torch
from torch import nn

from saliency.imsize import InputSize, hw, size_text
from saliency.models.adopted.weights import PICKLE_HINT, WRAPPERS, read_state_dict

FORMATS = ("torchvision", "timm", "huggingface", "function", "onnx", "pt2", "pickle")
ONNX_OPSET = 17  # onnx2torch converts up to here; newer files are converted down first
ONNX_TOLERANCE = 1e-4  # max |onnxruntime - torch| of the outputs, relative to max(1, |out|)


def detect_format(weights: Path | None, arch: str | None, function: str | None) -> str:
    """Which reader a file needs, from the flags and the file's suffix."""
    if function:
        return "function"
    if weights is None:
        where = ""
        if arch and arch.startswith("timm:"):
            where = (f"; timm downloads nothing here: save the weights once where there is a "
                     f"network (torch.save(timm.create_model('{arch[5:]}', pretrained=True)"
                     ".state_dict(), 'FILE.pth')) and pass --weights FILE.pth")  # fmt: skip
        raise ValueError(f"adopt needs --weights FILE (or --function module:function){where}")
    if weights.is_dir():
        return "huggingface"
    suffix = weights.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".pt2":
        return "pt2"
    if arch and arch.startswith("timm:"):
        return "timm"
    if suffix == ".safetensors" and not arch:
        raise ValueError(
            f"{weights} holds weights only: name the architecture with --arch (torchvision "
            "or timm:NAME) or --function module:function"
        )
    return "torchvision" if arch else "pickle"


def _fit_error(path: Path, what: str, exc: Exception) -> ValueError:
    lines = [s.strip() for s in str(exc).splitlines() if s.strip()]
    detail = lines[1] if len(lines) > 1 else lines[0] if lines else "the weights do not fit"
    return ValueError(f"{path}: the weights do not fit {what}: {detail[:200]}")


def torchvision_model(arch: str, state: dict[str, torch.Tensor], path: Path) -> nn.Module:
    """The torchvision classifier ``arch`` with ``state`` loaded; its number of outputs is
    that of the weights' last linear layer."""
    import torchvision

    valid = torchvision.models.list_models(module=torchvision.models)
    if arch not in valid:
        raise ValueError(
            f"--arch {arch} is not a torchvision classifier; valid: {', '.join(valid)}"
        )
    with torch.device("meta"):
        probe = torchvision.models.get_model(arch, weights=None)
    last = [n for n, m in probe.named_modules() if isinstance(m, nn.Linear)][-1]
    if f"{last}.weight" not in state:
        raise ValueError(f"{path} has no {last}.weight: is it a {arch} state dict?")
    n_out = int(state[f"{last}.weight"].shape[0])
    with torch.device("meta"):
        net = torchvision.models.get_model(arch, weights=None, num_classes=n_out)
    try:
        net.load_state_dict(state, assign=True)
    except RuntimeError as exc:
        raise _fit_error(path, arch, exc) from exc
    return net


def function_model(spec: str) -> nn.Module:
    """Call ``module:function`` (importable from the working folder) for an ``nn.Module``."""
    if ":" not in spec:
        raise ValueError(f"--function {spec}: write it as module:function (e.g. mylab.nets:build)")
    mod_name, fn_name = spec.split(":", 1)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"--function {spec}: cannot import it ({exc}); run from the folder that holds "
            "the module, or install it"
        ) from exc
    net = fn()
    if not isinstance(net, nn.Module):
        raise ValueError(f"--function {spec} returned {type(net).__name__}, not an nn.Module")
    return net


def load_function(spec: str, weights: Path | None) -> nn.Module:
    net = function_model(spec)
    if weights is not None:
        try:
            net.load_state_dict(read_state_dict(weights))
        except RuntimeError as exc:
            raise _fit_error(weights, spec, exc) from exc
    return net


def _inline_identities(model) -> None:
    """Replace ``Identity`` nodes that copy an initializer by a copy of that initializer
    (torch's exporter shares equal constants that way; onnx2torch wants them in place)."""
    import onnx

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    keep = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[node.input[0]])
            t.name = node.output[0]
            graph.initializer.append(t)
            inits[t.name] = t
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)


def read_onnx(path: Path, external: bool = True):
    """The ONNX model in ``path`` (``external``: with its external data files); a file that
    is not one (truncated, corrupt, another format) is one clear error."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=external)
    except Exception as exc:  # protobuf's DecodeError and friends: no public common base
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise ValueError(
            f"{path} is not a readable ONNX file ({why}); is it truncated? copy or export it again"
        ) from exc
    if not model.graph.node:
        raise ValueError(f"{path} holds no ONNX graph; copy or export it again")
    return model


def onnx_model(path: Path) -> nn.Module:
    """An ONNX file as a torch GraphModule (onnx2torch), converted down to opset
    :data:`ONNX_OPSET` first when onnx2torch lacks a converter for the file's opset."""
    import onnx
    import onnx2torch

    model = read_onnx(path)
    _inline_identities(model)
    try:
        return onnx2torch.convert(model)
    except NotImplementedError as first:
        try:
            down = onnx.version_converter.convert_version(model, ONNX_OPSET)
            _inline_identities(down)
            return onnx2torch.convert(down)
        except Exception as exc:
            raise ValueError(f"{path}: onnx2torch cannot convert it ({first})") from exc


def onnx_input_check(path: Path, size: InputSize) -> None:
    """A clear error when the ONNX input fixes a batch of one or another image size
    (``size``: the input adopt will feed, one side or ``(height, width)`` in px)."""
    graph = read_onnx(path, external=False).graph
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
    if dims[2:] != [None, None] and dims[2:] != list(hw(size)):
        fixed = size_text(tuple(dims[2:])) if None not in dims[2:] else f"{dims[2]}x{dims[3]}"
        raise ValueError(f"{path} takes {dims[2]}x{dims[3]} px inputs: pass --size {fixed}")


def onnx_output_names(path: Path) -> list[str]:
    """The ONNX file's output names, in order."""
    return [o.name for o in read_onnx(path, external=False).graph.output]


def onnx_difference(path: Path, net: nn.Module, x: torch.Tensor, index: int | None = None) -> float:
    """Max |onnxruntime - converted module| of raw output ``index`` (the first for ``None``)
    on ``x`` ``[N, 3, h, w]`` (normalized), in output units."""
    import onnxruntime as ort

    from saliency.models.adopted.outputs import pick

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    ref = torch.from_numpy(sess.run(None, {name: x.numpy()})[index or 0])
    with torch.no_grad():
        out = pick(net(x), index)
    return float((ref - out.reshape(ref.shape)).abs().max())


def onnx_check(
    path: Path, net: nn.Module, model: nn.Module, x: torch.Tensor, index: int | None = None
) -> float:
    """Max |onnxruntime - onnx2torch| of output ``index`` on ``x`` (:func:`onnx_difference`);
    an error when it exceeds :data:`ONNX_TOLERANCE` times ``max(1, |model(x)|)`` (``model``:
    the adopted net): then the converted model is not the model."""
    diff = onnx_difference(path, net, x, index)
    with torch.no_grad():
        scale = max(1.0, float(model(x).abs().max()))
    if diff > ONNX_TOLERANCE * scale:
        raise ValueError(
            f"onnx2torch's conversion of {path} differs from onnxruntime by {diff:.3g}; "
            "the converted model is not the model: report it to onnx2torch"
        )
    return diff


def pt2_model(path: Path) -> nn.Module:
    """A ``torch.export`` program as a module (gradients flow through it)."""
    return torch.export.load(str(path)).module()


def pickle_model(path: Path) -> nn.Module:
    """A whole pickled model (runs code from the file: only when the user trusts it)."""
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, dict):
        obj = next((obj[k] for k in WRAPPERS if isinstance(obj.get(k), nn.Module)), obj)
    if not isinstance(obj, nn.Module):
        raise ValueError(
            f"{path} holds a {type(obj).__name__}, not a model; for a state dict name --arch "
            "or --function"
        )
    return obj


def load_source(
    fmt: str,
    weights: Path | None,
    arch: str | None = None,
    function: str | None = None,
    trust_pickle: bool = False,
    size: InputSize | None = None,
) -> nn.Module:
    """The external model in eval mode on the CPU, its parameters frozen (``size``: the
    input side in px, for a timm model; a Hugging Face folder is read by
    :func:`saliency.models.adopted.hub.hub_folder`)."""
    if weights is not None and not (weights.is_file() or fmt == "huggingface"):
        raise FileNotFoundError(f"--weights {weights} does not exist")
    if fmt == "timm":
        from saliency.models.adopted.hub import timm_model, timm_name

        net = timm_model(timm_name(arch), read_state_dict(weights), weights, size)
    elif fmt == "huggingface":
        from saliency.models.adopted.hub import hub_folder

        net = hub_folder(weights).net
    elif fmt == "torchvision":
        net = torchvision_model(arch, read_state_dict(weights), weights)
    elif fmt == "function":
        net = load_function(function, weights)
    elif fmt == "onnx":
        net = onnx_model(weights)
    elif fmt == "pt2":
        net = pt2_model(weights)
    elif fmt == "pickle":
        if not trust_pickle:
            try:  # a plain state dict without --arch is a different mistake
                read_state_dict(weights)
            except ValueError as exc:
                raise ValueError(f"{weights} {PICKLE_HINT}") from exc
            raise ValueError(
                f"{weights} is a state dict: name its architecture with --arch (a torchvision "
                "classifier) or --function module:function"
            )
        net = pickle_model(weights)
    else:
        raise ValueError(f"unknown model format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt not in ("pt2", "huggingface"):  # an exported program has no train/eval switch
        net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
