"""Architecture names, importable without torchvision (for the CLI)."""

from __future__ import annotations

RESNET_ARCHS: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
OTHER_ARCHS: tuple[str, ...] = ("inception_v3", "vgg16")
TIMM_ARCHS: tuple[str, ...] = ("inception_resnet_v2",)  # built with timm
ARCHS: tuple[str, ...] = (*RESNET_ARCHS, *OTHER_ARCHS, *TIMM_ARCHS)
INCEPTION_MIN_SIZE = 75
