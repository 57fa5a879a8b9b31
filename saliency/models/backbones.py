"""CAM-ready feature extractors: torchvision ResNets, Inception v3 and VGG16-GAP.

ResNet output stride 16 (the default) keeps the last stage at stride 1: by a stride edit for
BasicBlock nets (ResNet-18/34) and by dilation for Bottleneck nets (ResNet-50 and up).
torchvision is imported when a net is built (importing it costs 1.4 s, torch._dynamo
included), so a process that loads another model never pays for it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch import nn

from saliency.models.names import ARCHS, OTHER_ARCHS, RESNET_ARCHS

if TYPE_CHECKING:
    from torchvision import models as tvm

_WEIGHTS = {"resnet18": "ResNet18_Weights", "resnet34": "ResNet34_Weights",
            "resnet50": "ResNet50_Weights", "resnet101": "ResNet101_Weights",
            "resnet152": "ResNet152_Weights", "inception_v3": "Inception_V3_Weights",
            "vgg16": "VGG16_Weights"}  # fmt: skip
assert tuple(_WEIGHTS) == RESNET_ARCHS + OTHER_ARCHS


def torchvision_arch(arch: str) -> tuple[Callable[..., nn.Module], Any]:
    """torchvision's builder of ``arch`` and its ImageNet weights enum member."""
    from torchvision import models as tvm

    return getattr(tvm, arch), getattr(tvm, _WEIGHTS[arch]).IMAGENET1K_V1


def _add_se(net: tvm.ResNet, reduction: int = 16) -> None:
    """Squeeze-and-excitation on every block's residual branch, before the addition."""
    from torchvision.models.resnet import Bottleneck
    from torchvision.ops import SqueezeExcitation

    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            name = "bn3" if isinstance(block, Bottleneck) else "bn2"
            bn = getattr(block, name)
            c = bn.num_features
            setattr(block, name, nn.Sequential(bn, SqueezeExcitation(c, max(8, c // reduction))))


def resnet_features(arch: str, output_stride: int = 16, se: bool = False) -> tuple[nn.Module, int]:
    """A torchvision ResNet without pool and fc; returns (features, channels)."""
    if output_stride not in (16, 32):
        raise ValueError("--output-stride must be 16 or 32")
    build, _ = torchvision_arch(arch)
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
    net = torchvision_arch("inception_v3")[0](
        weights=None, aux_logits=False, init_weights=True, transform_input=False
    )
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
    net = torchvision_arch("vgg16")[0](weights=None)
    body = net.features[:-1]  # drop pool5: output stride 16
    extra = nn.Sequential(nn.Conv2d(512, 1024, 3, padding=1), nn.ReLU(inplace=True))
    return nn.Sequential(OrderedDict([("body", body), ("cam_conv", extra)])), 1024


IRV2_BLOCKS = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a",
               "maxpool_5a", "mixed_5b", "repeat", "mixed_6a", "repeat_1", "mixed_7a",
               "repeat_2", "block8", "conv2d_7b")  # fmt: skip


def inception_resnet_v2_features() -> tuple[nn.Module, int]:
    """timm's InceptionResNetV2 up to its last conv (conv2d_7b, 1536 channels, output stride
    32: a 5x4 grid at 218x178 px, 8x8 at 299 px), the blocks under timm's own names so
    timm's state dicts load by name; GAP -> FC is CamNet's."""
    import timm

    net = timm.create_model("inception_resnet_v2", pretrained=False, num_classes=0)
    return nn.Sequential(OrderedDict((n, getattr(net, n)) for n in IRV2_BLOCKS)), net.num_features


def build_features(arch: str, output_stride: int = 16, se: bool = False) -> tuple[nn.Module, int]:
    if arch in RESNET_ARCHS:
        return resnet_features(arch, output_stride, se)
    if se:
        raise ValueError("--se applies to ResNets only")
    if arch == "inception_v3":
        return inception_features()
    if arch == "vgg16":
        return vgg_gap_features()
    if arch == "inception_resnet_v2":  # its own stride, 32, as inception_v3's
        return inception_resnet_v2_features()
    raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHS)}")
