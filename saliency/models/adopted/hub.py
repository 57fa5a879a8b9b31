"""timm models by name and local Hugging Face folders, read without any download.

``timm``: ``--arch timm:NAME --weights FILE`` builds ``timm.create_model(NAME,
num_classes=K, img_size=size)`` (``img_size`` where the model takes one) and loads the
file's state dict (``.pth``, ``.bin`` or ``.safetensors``); ``K`` is read from the weights'
classifier. A ViT's position embedding trained at another size is resampled by timm's own
checkpoint filter for that architecture, when it has one.

``huggingface``: a folder with ``config.json``, weights and ``preprocessor_config.json``
(size, mean and std). A timm model saved to the hub (``config.json`` naming its
``architecture``) is read with timm; a ``transformers`` image classifier (the optional extra
``saliency[hf]``) is read with ``AutoModelForImageClassification`` and exported with
``torch.export`` (its logits), so the graph can be cut like any other.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from saliency.imsize import InputSize, size_text

HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
TIMM_PREFIX = "timm:"


def timm_name(arch: str | None) -> str | None:
    """``timm:NAME`` -> ``NAME``; None for other architecture names."""
    if arch and arch.startswith(TIMM_PREFIX):
        return arch[len(TIMM_PREFIX) :]
    return None


def _create(name: str, n_out: int | None, size: InputSize | None, device: str | None = None):
    import timm

    if not timm.is_model(name):
        raise ValueError(
            f'--arch timm:{name} is not a timm model; `python -c "import timm; '
            f"print(timm.list_models('*{name.split('_')[0]}*'))\"` lists the names"
        )
    kw = {} if n_out is None else {"num_classes": n_out}
    with torch.device(device) if device else torch.device("cpu"):
        try:
            return timm.create_model(name, pretrained=False, img_size=size, **kw)
        except TypeError:  # a CNN: no img_size
            return timm.create_model(name, pretrained=False, **kw)


def timm_shell(name: str, n_out: int, size: InputSize) -> nn.Module:
    """timm model ``name`` with ``n_out`` outputs for ``size`` inputs (one side, or
    ``(height, width)`` in px), untrained."""
    return _create(name, n_out, size).eval().requires_grad_(False)


def timm_model(name: str, state: dict[str, torch.Tensor], path: Path, size: InputSize) -> nn.Module:
    """timm model ``name`` for ``size`` px inputs with ``state`` (read from ``path``) loaded;
    its number of outputs is that of the weights' classifier."""
    probe = _create(name, None, size, "meta")
    head = probe.pretrained_cfg.get("classifier", "head")
    head = head[0] if isinstance(head, list | tuple) else head
    if f"{head}.weight" not in state:
        raise ValueError(f"{path} has no {head}.weight: is it a timm {name} state dict?")
    net = _create(name, int(state[f"{head}.weight"].shape[0]), size)
    own = net.state_dict()
    if any(k in own and own[k].shape != v.shape for k, v in state.items()):
        filter_fn = getattr(
            importlib.import_module(type(net).__module__), "checkpoint_filter_fn", None
        )
        if filter_fn is not None:  # e.g. a ViT's position embedding, resampled to this size
            state = filter_fn(state, net)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        lines = [s.strip() for s in str(exc).splitlines() if s.strip()]
        detail = (lines[1] if len(lines) > 1 else lines[0])[:200]
        raise ValueError(
            f"{path}: the weights do not fit timm:{name} at {size_text(size)} px: {detail}"
        ) from exc
    return net


@dataclass
class HubFolder:
    net: nn.Module
    kind: str  # "timm" or "transformers"
    config: dict  # config.json
    size: int | None
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    classes: list[str] = field(default_factory=list)  # in output order, when the folder names them
    notes: list[str] = field(default_factory=list)


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not readable JSON ({exc})") from exc


def _preprocessor(folder: Path, config: dict) -> tuple[int | None, tuple | None, tuple | None]:
    """Size, mean and std from ``preprocessor_config.json`` (transformers) or from a timm
    config's ``pretrained_cfg``."""
    pp = folder / "preprocessor_config.json"
    if pp.is_file():
        d = _json(pp)
        if (
            d.get("do_rescale", True)
            and abs(float(d.get("rescale_factor", 1 / 255)) - 1 / 255) > 1e-9
        ):
            raise ValueError(
                f"{pp}: rescale_factor {d['rescale_factor']}; adopt reads pixels / 255"
            )
        size = d.get("size") or d.get("crop_size") or {}
        side = size.get("height") or size.get("shortest_edge") if isinstance(size, dict) else size
        if not d.get("do_normalize", True):
            return side, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        return side, d.get("image_mean"), d.get("image_std")
    cfg = config.get("pretrained_cfg") or {}
    side = (cfg.get("input_size") or [None, None])[-1]
    return side, cfg.get("mean"), cfg.get("std")


class _Logits(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def transformers_net(config: dict, folder: Path | None, size: int) -> nn.Module:
    """A transformers image classifier (its ``config.json`` as ``config``; weights from
    ``folder``, or untrained when None) as an exported graph of its logits for ``size`` px
    inputs and any batch size."""
    try:
        import transformers
    except ImportError as exc:
        raise ValueError(
            "this Hugging Face folder is a transformers model: install the extra with "
            "`pip install 'saliency[hf]'`"
        ) from exc
    transformers.utils.logging.disable_progress_bar()  # the command line has its own
    if folder is not None:
        model = transformers.AutoModelForImageClassification.from_pretrained(
            str(folder), local_files_only=True
        )
    else:
        cfg = transformers.AutoConfig.for_model(**config)
        model = transformers.AutoModelForImageClassification.from_config(cfg)
    from saliency.models.adopted.graph import export_graph

    return export_graph(_Logits(model.eval()).eval(), torch.zeros(2, 3, size, size))


def hub_folder(folder: Path) -> HubFolder:
    """The model in a local Hugging Face folder and the preprocessing it names."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ValueError(
            f"{folder} has no config.json; a Hugging Face folder holds config.json and weights"
        )
    config = _json(config_path)
    size, mean, std = _preprocessor(folder, config)
    notes = []
    if not (folder / "preprocessor_config.json").is_file() and "pretrained_cfg" not in config:
        notes.append(f"{folder} has no preprocessor_config.json: pass --size, --mean and --std")
    labels = config.get("label_names") or [
        v for _, v in sorted((config.get("id2label") or {}).items(), key=lambda kv: int(kv[0]))
    ]
    if "architecture" in config:  # timm's hub layout
        weights = next((folder / w for w in HF_WEIGHTS if (folder / w).is_file()), None)
        if weights is None:
            raise ValueError(f"{folder} holds no {' or '.join(HF_WEIGHTS)}")
        from saliency.models.adopted.weights import read_state_dict

        net = timm_model(config["architecture"], read_state_dict(weights), weights, size).eval()
        return HubFolder(net, "timm", config, size, mean, std, list(labels), notes)
    if not size:
        raise ValueError(f"{folder}: no input size in preprocessor_config.json; pass --size")
    net = transformers_net(config, folder, int(size))
    return HubFolder(net, "transformers", config, size, mean, std, list(labels), notes)
