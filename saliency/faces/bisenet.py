"""BiSeNet face parser for the public CelebAMask-HQ checkpoint, mapped to our six regions.

The network mirrors ``model.py`` of zllrunning/face-parsing.PyTorch (the parser used by the
reference study): module and parameter names and shapes match, so its published checkpoint
``79999_iter.pth`` (19 classes, trained at 512 px) loads with ``strict=True``. The user
downloads that file and passes it with ``--parser-weights PATH``; saliency never downloads
anything, and the constructor does not fetch ImageNet weights as upstream's does.

As upstream, the spatial path is replaced by the backbone's 1/8 feature map, and the two
auxiliary heads (``conv_out16``, ``conv_out32``) only serve training; :meth:`BiSeNet.forward`
skips them and returns the main logits.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from saliency.faces.bisenet_backbone import ResNet18

CELEBAMASK_CLASSES: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear",
    "ear_r", "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)  # fmt: skip
"""The 19 CelebAMask-HQ classes in the checkpoint's output order (``eye_g`` glasses,
``ear_r`` earring, ``neck_l`` necklace)."""

CELEBAMASK_TO_REGION: np.ndarray = np.array(
    [0, 1, 2, 2, 3, 3, 3, 1, 1, 0, 4, 5, 5, 5, 0, 0, 0, 6, 0], dtype=np.uint8
)
"""Lookup ``uint8 [19]``: CelebAMask-HQ class -> our region code (saliency.data.regions).

skin and both ears -> skin (1); both brows -> brows (2); both eyes and glasses -> eyes (3),
as glasses cover the eyes and the parser labels the whole lens ``eye_g``; nose -> nose (4);
mouth and both lips -> mouth (5); hair -> hair (6); background, earring, neck, necklace,
cloth and hat -> 0."""

PARSER_SIZE = 512  # the checkpoint's training and test resolution
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConvBNReLU(nn.Module):
    """Conv (no bias) + BN + ReLU: ``[N, C_in, H, W] -> [N, C_out, H/s, W/s]``."""

    def __init__(self, in_chan: int, out_chan: int, ks: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chan, out_chan, ks, stride=stride, padding=ks // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_chan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BiSeNetOutput(nn.Module):
    """Segmentation head: 3x3 ConvBNReLU then a 1x1 conv to ``n_classes`` logits."""

    def __init__(self, in_chan: int, mid_chan: int, n_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_chan, mid_chan)
        self.conv_out = nn.Conv2d(mid_chan, n_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class AttentionRefinementModule(nn.Module):
    """ConvBNReLU reweighted per channel by a sigmoid of its global average (BN'd 1x1 conv)."""

    def __init__(self, in_chan: int, out_chan: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_chan, out_chan)
        self.conv_atten = nn.Conv2d(out_chan, out_chan, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_chan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        atten = feat.mean(dim=(2, 3), keepdim=True)  # [N, C, 1, 1]
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(atten)))


class ContextPath(nn.Module):
    """ResNet-18 plus attention refinement: returns ``feat8 [N, 128, H/8, W/8]`` (backbone),
    ``feat16_up [N, 128, H/8, W/8]`` and ``feat32_up [N, 128, H/16, W/16]``."""

    def __init__(self) -> None:
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, ks=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        avg = self.conv_avg(feat32.mean(dim=(2, 3), keepdim=True))  # [N, 128, 1, 1], broadcast
        feat32_up = F.interpolate(self.arm32(feat32) + avg, feat16.shape[2:], mode="nearest")
        feat32_up = self.conv_head32(feat32_up)
        feat16_up = F.interpolate(self.arm16(feat16) + feat32_up, feat8.shape[2:], mode="nearest")
        feat16_up = self.conv_head16(feat16_up)
        return feat8, feat16_up, feat32_up


class FeatureFusionModule(nn.Module):
    """Concatenate two feature maps, fuse with a 1x1 ConvBNReLU, add a channel-attended copy."""

    def __init__(self, in_chan: int, out_chan: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_chan, out_chan, ks=1)
        self.conv1 = nn.Conv2d(out_chan, out_chan // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_chan // 4, out_chan, 1, bias=False)

    def forward(self, fsp: torch.Tensor, fcp: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([fsp, fcp], dim=1))
        atten = feat.mean(dim=(2, 3), keepdim=True)
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(atten))))
        return feat * atten + feat


class BiSeNet(nn.Module):
    """BiSeNet face parser (face-parsing.PyTorch layout, ~13.3M parameters for 19 classes).

    ``forward(x [N, 3, H, W])`` (ImageNet-normalised RGB) returns the main logits
    ``[N, n_classes, H, W]``; :meth:`forward_all` also returns the two auxiliary outputs.
    """

    def __init__(self, n_classes: int = 19) -> None:
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, n_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, n_classes)
        self.conv_out32 = BiSeNetOutput(128, 64, n_classes)

    def _upsample(self, logits: torch.Tensor, size: torch.Size) -> torch.Tensor:
        return F.interpolate(logits, size, mode="bilinear", align_corners=True)  # as upstream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat8, feat_cp8, _ = self.cp(x)
        return self._upsample(self.conv_out(self.ffm(feat8, feat_cp8)), x.shape[2:])

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Main, 1/8 and 1/16 auxiliary logits, each ``[N, n_classes, H, W]`` (upstream order)."""
        feat8, feat_cp8, feat_cp16 = self.cp(x)
        main = self.conv_out(self.ffm(feat8, feat_cp8))
        outs = (main, self.conv_out16(feat_cp8), self.conv_out32(feat_cp16))
        return tuple(self._upsample(o, x.shape[2:]) for o in outs)  # type: ignore[return-value]


def _layout_error(model: nn.Module, state: dict, path: Path) -> ValueError:
    """Describe how ``state`` differs from ``model.state_dict()`` (a few keys of each kind)."""
    ours = model.state_dict()
    missing = [k for k in ours if k not in state]
    unexpected = [k for k in state if k not in ours]
    bad = [k for k in ours if k in state and state[k].shape != ours[k].shape]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(ours[k].shape)}" for k in bad]
    parts = [
        f"{label} ({len(keys)}): {', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", shapes))
        if keys
    ]
    return ValueError(
        f"{path} is not a face-parsing.PyTorch BiSeNet checkpoint (19 classes): {'; '.join(parts)}"
    )


def load_parser(path: str | Path, device: str | torch.device = "cpu") -> BiSeNet:
    """Load the user's ``79999_iter.pth`` (a plain state dict) into a :class:`BiSeNet` in eval
    mode on ``device``; ``weights_only=True``, strict key and shape check."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"face parser weights {path} not found: download the public checkpoint "
            "79999_iter.pth of zllrunning/face-parsing.PyTorch on a machine with internet and "
            "pass it with --parser-weights PATH (saliency never downloads it)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise ValueError(f"{path} is not a readable PyTorch state dict: {err}") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (name -> tensor)")
    model = BiSeNet(n_classes=len(CELEBAMASK_CLASSES))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise _layout_error(model, state, path) from err
    return model.to(device).eval()


def _preprocess(images: torch.Tensor) -> torch.Tensor:
    """``uint8 [n, H, W, 3]`` RGB -> ``float [n, 3, 512, 512]`` as upstream's ``test.py``.

    Upstream resizes the PIL image to 512x512 with ``Image.BILINEAR`` (antialiased when
    shrinking, result rounded to uint8), then ``ToTensor`` (/255) and ``Normalize`` with the
    ImageNet mean/std. We do the same with antialiased bilinear interpolation
    (``align_corners=False``, PIL's pixel-centre convention) and round to integers.
    """
    x = images.permute(0, 3, 1, 2).float()
    if tuple(x.shape[2:]) != (PARSER_SIZE, PARSER_SIZE):
        size = (PARSER_SIZE, PARSER_SIZE)
        x = F.interpolate(x, size, mode="bilinear", align_corners=False, antialias=True)
        x = x.round().clamp(0, 255)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


def _resize_nearest(labels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Nearest-neighbour resize of ``[n, h, w]`` to ``[n, height, width]`` (pixel centres)."""
    h, w = labels.shape[1:]
    iy = ((torch.arange(height, device=labels.device) + 0.5) * (h / height)).long().clamp(max=h - 1)
    ix = ((torch.arange(width, device=labels.device) + 0.5) * (w / width)).long().clamp(max=w - 1)
    return labels[:, iy[:, None], ix[None, :]]


def parse_regions(
    model: BiSeNet, images: np.ndarray | torch.Tensor, batch_size: int = 8
) -> torch.Tensor:
    """Region label maps ``uint8 [N, H, W]`` (codes 0..6, on the CPU) for ``uint8 [N, H, W, 3]``
    RGB images, in batches on the model's device (``model`` must be in eval mode).

    Each image is resized to 512 px and normalised (:func:`_preprocess`); the argmax of the
    main output over the 19 classes goes through :data:`CELEBAMASK_TO_REGION` and back to
    ``H x W`` by nearest-neighbour resizing.
    """
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"expected uint8 [N, H, W, 3] RGB images, got {images.dtype} {tuple(images.shape)}"
        )
    if model.training:
        raise ValueError("parse_regions needs the parser in eval mode (call model.eval())")
    device = next(model.parameters()).device
    lut = torch.from_numpy(CELEBAMASK_TO_REGION).to(device)
    height, width = images.shape[1:3]
    out = torch.empty(images.shape[:3], dtype=torch.uint8)
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size].to(device)
            classes = model(_preprocess(batch)).argmax(dim=1)  # [n, 512, 512]
            out[start : start + batch.shape[0]] = _resize_nearest(lut[classes], height, width).cpu()
    return out
