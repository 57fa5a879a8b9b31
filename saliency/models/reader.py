"""Known-answer models: hand-weighted CAM-ready nets that read one fixed set of pixels.

For an input normalized by the run's preprocessing, the region reader computes each pixel's
darkness ``d = 1 - gray`` of the unnormalized image (0 white, 1 black; gray is the channel
mean in [0, 1]) and

    logit = w * mean over pixels of t(p) * (d(p) - d0) + b

with a fixed pixel template ``t`` (say, a region's mask) and a darkness ``d0`` that scores
zero. It has the CamNet shape (features ``[N, 1, H, W] = t * (d - d0)`` at stride 1, global
average pooling, one linear layer), so every method has an exact answer on it: CAM and
Grad-CAM equal ``w * t * (d - d0)`` pixel by pixel, IG is zero wherever ``t`` is (the logit
is linear in the input, so IG is exact with any number of steps), and changing pixels outside
``t`` changes nothing. Tests and validation use it to prove mechanisms without training.
"""

from __future__ import annotations

import torch
from torch import nn

from saliency.models.preprocess import Preprocessing

ARCH = "region-reader"


class TemplateReader(nn.Module):
    """``x [N, 3, H, W]`` (normalized) -> ``t * (d - d0)`` ``[N, 1, H, W]``.

    The darkness is one 1x1 convolution that undoes the normalization; the template is a
    buffer whose shape comes from the state dict it is loaded from.
    """

    def __init__(self) -> None:
        super().__init__()
        self.darkness = nn.Conv2d(3, 1, 1)
        self.register_buffer("template", torch.zeros(1, 1, 0, 0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "template"
        if key in state_dict:  # take the stored template's size (and stay on our device)
            self.template = torch.empty_like(state_dict[key], device=self.template.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != tuple(self.template.shape[-2:]):
            raise ValueError(
                f"the region reader's template is {tuple(self.template.shape[-2:])} px; "
                f"the input is {tuple(x.shape[-2:])}"
            )
        return self.darkness(x) * self.template


def reader_state_dict(
    template: torch.Tensor, pre: Preprocessing, weight: float, bias: float, d0: float
) -> dict[str, torch.Tensor]:
    """Weights of a region reader for ``template [H, W]`` (float, usually 0/1) under ``pre``.

    ``x_c = (u_c - mean_c) / std_c`` for the unit image ``u``, so ``d = 1 - mean_c u_c`` is
    ``sum_c (-std_c / 3) x_c + 1 - mean(mean_c)``; ``d0`` moves into the bias.
    """
    std = torch.tensor(pre.std, dtype=torch.float32)
    mean = torch.tensor(pre.mean, dtype=torch.float32)
    return {
        "features.darkness.weight": (-std / 3).view(1, 3, 1, 1),
        "features.darkness.bias": (1 - mean.mean() - d0).view(1),
        "features.template": template.to(torch.float32).view(1, 1, *template.shape[-2:]),
        "fc.weight": torch.tensor([[float(weight)]]),
        "fc.bias": torch.tensor([float(bias)]),
    }
