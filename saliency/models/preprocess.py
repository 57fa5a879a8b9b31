"""The one preprocessing contract: image file -> the exact tensor the model classifies.

The checkpoint stores a :class:`Preprocessing`; training, evaluation, explanation, ablation
and figures all build their tensors with :func:`load_resized` then :func:`normalize`, so the
tensor that is explained or ablated is the tensor that was classified.
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

from saliency.data.imageio import read_rgb
from saliency.imsize import InputSize, as_size, hw, plain_size, size_text

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
COLORS = ("RGB", "BGR")  # the channel order the model takes


@dataclass(frozen=True)
class Preprocessing:
    """How a stored (aligned) image becomes the model's input.

    size: the input in px, one side (square) or ``(height, width)``; the whole image is
        stretched to it (no crop: aligned faces are already cropped, and region masks must
        map onto the input exactly). :attr:`hw` is always ``(height, width)``.
    mean, std: per-channel normalization of values in [0, 1], in the model's channel order.
    interpolation: ``area`` (cv2.INTER_AREA when shrinking, linear when enlarging).
    color: the channel order the model takes, ``RGB`` or ``BGR`` (OpenCV and Caffe ports):
        images are read and kept RGB everywhere; :func:`normalize` reorders the channels.
    """

    size: InputSize
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: str = "stretch"
    interpolation: str = "area"
    color: str = "RGB"

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", as_size(self.size))
        if self.color not in COLORS:
            raise ValueError(f"unknown channel order {self.color!r}; valid: {', '.join(COLORS)}")

    @property
    def hw(self) -> tuple[int, int]:
        """The input's ``(height, width)`` in px."""
        return hw(self.size)

    @property
    def text(self) -> str:
        """The size as people write it: ``128 px`` or ``218x178 px`` (height x width)."""
        return f"{size_text(self.size)} px"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["size"] = plain_size(self.size)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        return cls(
            size=as_size(d["size"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
            resize=d.get("resize", "stretch"),
            interpolation=d.get("interpolation", "area"),
            color=str(d.get("color", "RGB")).upper(),
        )


def resize_rgb(image: np.ndarray, size: InputSize) -> np.ndarray:
    """RGB ``uint8 [H, W, 3]`` -> ``uint8 [h, w, 3]`` (``(h, w) = hw(size)``) by the
    contract's rule: area averaging when the image shrinks along either axis, else linear."""
    out = hw(size)
    if image.shape[:2] == out:
        return image
    shrink = out[0] < image.shape[0] or out[1] < image.shape[1]
    return cv2.resize(
        image, out[::-1], interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def resize_labels(labels: np.ndarray, size: InputSize) -> np.ndarray:
    """A label map ``uint8 [H, W]`` (region codes) in the stored image's coordinates ->
    ``uint8 [h, w]`` on the model's input grid, by the same stretch as :func:`resize_rgb`;
    nearest neighbour at pixel centres, so no code is invented."""
    out = hw(size)
    if labels.shape[:2] == out:
        return labels
    return cv2.resize(labels, out[::-1], interpolation=cv2.INTER_NEAREST_EXACT)


def load_resized(path: str | os.PathLike, pre: Preprocessing) -> np.ndarray:
    """Read an image file and resize it: ``uint8 [h, w, 3]`` RGB at ``pre.hw``."""
    return resize_rgb(read_rgb(path), pre.size)


def to_unit(batch: torch.Tensor) -> torch.Tensor:
    """``uint8 [N, H, W, 3]`` or ``[N, 3, H, W]`` -> float ``[N, 3, H, W]`` in [0, 1]."""
    if batch.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {batch.dtype}")
    if batch.shape[-1] == 3 and batch.shape[1] != 3:
        batch = batch.permute(0, 3, 1, 2)
    return batch.float().div_(255.0)


def normalize(x: torch.Tensor, pre: Preprocessing) -> torch.Tensor:
    """Float RGB ``[N, 3, H, W]`` in [0, 1] -> the model's input: channels in its order
    (``pre.color``), then mean/std normalized."""
    mean, std = _channel_stats(tuple(pre.mean), tuple(pre.std), x.dtype, x.device)
    if pre.color == "BGR":
        x = x.flip(1)
    return (x - mean) / std


@functools.lru_cache(maxsize=16)
def _channel_stats(
    mean: tuple[float, ...], std: tuple[float, ...], dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std ``[1, 3, 1, 1]`` on ``device``, made once: a copy from pageable memory
    to a GPU waits for all the work queued before it, so a per-batch copy would stall."""
    shape = (1, len(mean), 1, 1)
    with torch.inference_mode(False):  # ordinary tensors: autograd may save them later
        return (
            torch.tensor(mean, dtype=dtype, device=device).view(shape),
            torch.tensor(std, dtype=dtype, device=device).view(shape),
        )


def model_input(batch: torch.Tensor, pre: Preprocessing) -> torch.Tensor:
    """``uint8`` images (already resized) -> normalized float input ``[N, 3, h, w]``."""
    return normalize(to_unit(batch), pre)
