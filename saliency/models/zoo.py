"""Build CAM-ready models by name, with optional pretrained weights from local files only."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from saliency.imsize import InputSize, hw
from saliency.models.backbones import build_features, torchvision_arch
from saliency.models.camnet import CamNet
from saliency.models.names import ARCHS, INCEPTION_MIN_SIZE, TIMM_ARCHS
from saliency.models.preprocess import Preprocessing
from saliency.models.reader import ARCH as READER
from saliency.models.reader import TemplateReader


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network (stored in every checkpoint)."""

    arch: str = "resnet18"
    n_outputs: int = 1
    loss: str = "bce"
    output_stride: int = 16
    se: bool = False
    dropout: float = 0.3
    pretrained: str | None = None

    def __post_init__(self) -> None:
        if self.arch not in (*ARCHS, READER):
            raise ValueError(f"unknown architecture {self.arch!r}; valid: {', '.join(ARCHS)}")
        if self.loss not in ("bce", "ce"):
            raise ValueError("--loss must be bce (one logit) or ce (one logit per class)")

    def to_dict(self) -> dict:
        return asdict(self)


def build_model(spec: ModelSpec) -> CamNet:
    """A freshly initialized CamNet for ``spec`` (weights loaded separately).

    ``region-reader`` is the hand-weighted known-answer net of :mod:`saliency.models.reader`
    (never trained: its weights come from ``reader_state_dict``)."""
    if spec.arch == READER:
        return CamNet(TemplateReader(), 1, spec.n_outputs, spec.dropout)
    features, channels = build_features(spec.arch, spec.output_stride, spec.se)
    return CamNet(features, channels, spec.n_outputs, spec.dropout)


def default_preprocessing(spec: ModelSpec, size: InputSize) -> Preprocessing:
    """ImageNet mean/std, except Inception's ImageNet weights, which expect [-1, 1] inputs.

    (torchvision's ``transform_input`` does that conversion inside the net; we record it in
    the preprocessing instead, so that every stage normalizes the same way.)
    """
    if spec.arch == "inception_v3" and min(hw(size)) < INCEPTION_MIN_SIZE:
        raise ValueError(f"inception_v3 needs --size of at least {INCEPTION_MIN_SIZE} px")
    if spec.arch == "inception_v3" and spec.pretrained == "imagenet":
        return Preprocessing(size=size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    if spec.arch == "inception_resnet_v2" and spec.pretrained:  # timm's weights: [-1, 1]
        return Preprocessing(size=size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return Preprocessing(size=size)


def hub_weights_path(arch: str) -> tuple[Path, str]:
    """Where torch hub keeps ``arch``'s ImageNet weights, and their download address."""
    if arch in TIMM_ARCHS:
        raise FileNotFoundError(
            f"{arch}'s ImageNet weights come from timm, and saliency never downloads them: "
            f"where there is a network, save torch.save(timm.create_model('{arch}', "
            "pretrained=True).state_dict(), 'irv2.pth') and pass --pretrained irv2.pth"
        )
    _, weights = torchvision_arch(arch)
    url = weights.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], url


def _map_backbone_keys(arch: str, state: dict, se: bool) -> dict:
    """torchvision key names -> ours (features.*), dropping classifier heads."""
    out = {}
    for key, value in state.items():
        if key.startswith(("fc.", "AuxLogits.", "classifier.", "classif.")):
            continue
        if arch == "vgg16":
            if not key.startswith("features."):
                continue
            key = "body." + key[len("features.") :]
        if se:
            for bn in (".bn2.", ".bn3."):
                key = key.replace(bn, bn[:-1] + ".0.")
        out["features." + key] = value
    return out


def load_backbone(model: CamNet, spec: ModelSpec, source: str | os.PathLike) -> None:
    """Load ImageNet weights (``"imagenet"``, from the local hub cache) or a state-dict file.

    Nothing is downloaded: a missing file is an error that says where to put it.
    """
    if str(source) == "imagenet":
        path, url = hub_weights_path(spec.arch)
        if not path.is_file():
            raise FileNotFoundError(
                f"ImageNet weights for {spec.arch} are not in the torch hub cache; saliency "
                f"never downloads them: fetch {url} on a machine with internet and place it at "
                f"{path}"
            )
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"--pretrained file {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
        state = {
            k[len("features.") :] if k.startswith("features.") else k: v for k, v in state.items()
        }
    mapped = _map_backbone_keys(spec.arch, state, spec.se)
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    missing = [
        k
        for k in missing
        if not k.startswith("fc.") and ".fc1." not in k and ".fc2." not in k and "cam_conv" not in k
    ]
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit {spec.arch}: {len(missing)} missing keys (e.g. {missing[:3]}),"
            f" {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
