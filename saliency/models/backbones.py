"""CAM-ready feature extractors: torchvision ResNets, Inception v3 and VGG16-GAP.

ResNet output stride 16 (the default) keeps the last stage at stride 1: by a stride edit for
BasicBlock nets (ResNet-18/34) and by dilation for Bottleneck nets (ResNet-50 and up).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn
from torchvision import models as tvm
from torchvision.ops import SqueezeExcitation

from saliency.models.names import ARCHS, OTHER_ARCHS, RESNET_ARCHS

RESNETS = {
    "resnet18": (tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (tvm.resnet34, tvm.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (tvm.resnet50, tvm.ResNet50_Weights.IMAGENET1K_V1),
    "resnet101": (tvm.resnet101, tvm.ResNet101_Weights.IMAGENET1K_V1),
    "resnet152": (tvm.resnet152, tvm.ResNet152_Weights.IMAGENET1K_V1),
}
OTHERS = {
    "inception_v3": (tvm.inception_v3, tvm.Inception_V3_Weights.IMAGENET1K_V1),
    "vgg16": (tvm.vgg16, tvm.VGG16_Weights.IMAGENET1K_V1),
}
assert tuple(RESNETS) == RESNET_ARCHS and tuple(OTHERS) == OTHER_ARCHS


def _add_se(net: tvm.ResNet, reduction: int = 16) -> None:
    """Squeeze-and-excitation on every block's residual branch, before the addition."""
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            name = "bn3" if isinstance(block, tvm.resnet.Bottleneck) else "bn2"
            bn = getattr(block, name)
            c = bn.num_features
            setattr(block, name, nn.Sequential(bn, SqueezeExcitation(c, max(8, c // reduction))))


def resnet_features(arch: str, output_stride: int = 16, se: bool = False) -> tuple[nn.Module, int]:
    """A torchvision ResNet without pool and fc; returns (features, channels)."""
    if output_stride not in (16, 32):
        raise ValueError("--output-stride must be 16 or 32")
    build, _ = RESNETS[arch]
    bottleneck = arch not in ("resnet18", "resnet34")
    dilate = [False, False, output_stride == 16] if bottleneck else None
    net = build(weights=None, replace_stride_with_dilation=dilate)
    if output_stride == 16 and not bottleneck:
        first = net.layer4[0]
        first.conv1.stride = (1, 1)
        first.downsample[0].stride = (1, 1)
    if se:
        _add_se(net)
    features = nn.Sequential(
        OrderedDict(
            (name, getattr(net, name))
            for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        )
    )
    return features, net.fc.in_features


def inception_features() -> tuple[nn.Module, int]:
    """Inception v3 up to Mixed_7c (it pools globally before its classifier already)."""
    net = tvm.inception_v3(weights=None, aux_logits=False, init_weights=True, transform_input=False)
    names = [
        "Conv2d_1a_3x3",
        "Conv2d_2a_3x3",
        "Conv2d_2b_3x3",
        "maxpool1",
        "Conv2d_3b_1x1",
        "Conv2d_4a_3x3",
        "maxpool2",
        "Mixed_5b",
        "Mixed_5c",
        "Mixed_5d",
        "Mixed_6a",
        "Mixed_6b",
        "Mixed_6c",
        "Mixed_6d",
        "Mixed_6e",
        "Mixed_7a",
        "Mixed_7b",
        "Mixed_7c",
    ]
    return nn.Sequential(OrderedDict((n, getattr(net, n)) for n in names)), 2048


def vgg_gap_features() -> tuple[nn.Module, int]:
    """VGG16-GAP as in Zhou et al. (CAM): conv5_3 without pool5, then conv 3x3 1024 + ReLU."""
    net = tvm.vgg16(weights=None)
    body = net.features[:-1]  # drop pool5: output stride 16
    extra = nn.Sequential(nn.Conv2d(512, 1024, 3, padding=1), nn.ReLU(inplace=True))
    return nn.Sequential(OrderedDict([("body", body), ("cam_conv", extra)])), 1024


def build_features(arch: str, output_stride: int = 16, se: bool = False) -> tuple[nn.Module, int]:
    if arch in RESNETS:
        return resnet_features(arch, output_stride, se)
    if se:
        raise ValueError("--se applies to ResNets only")
    if arch == "inception_v3":
        return inception_features()
    if arch == "vgg16":
        return vgg_gap_features()
    raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHS)}")
