"""Which channel order a foreign model reads: its accuracy on labeled images under the
preprocessing it was adopted with and under the other order (RGB for BGR, BGR for RGB).

A model trained on OpenCV's BGR images and fed RGB (or the reverse) still runs and still
gives maps, only wrong ones: the commonest silent mistake with models one did not train.
The check classifies up to :data:`LIMIT` images both ways; the other order is *clearly better*
when it is right on at least :data:`MARGIN` more of them and an exact McNemar test on the
images the two orders disagree about gives p < :data:`ALPHA`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from saliency.models import outputs
from saliency.models.preprocess import Preprocessing, normalize, to_unit

__all__ = ["ALPHA", "LIMIT", "MARGIN", "ChannelCheck", "channel_check", "other_order"]

LIMIT = 256  # images classified each way
MARGIN = 0.10  # accuracy the other order must gain
ALPHA = 0.01  # McNemar's exact test on the discordant images


@dataclass(frozen=True)
class ChannelCheck:
    color: str  # the order the model was adopted with
    accuracy: float
    other_accuracy: float
    n: int  # images classified each way
    p: float  # exact McNemar test: the two orders are right equally often

    @property
    def other(self) -> str:
        return other_order(self.color)

    @property
    def other_better(self) -> bool:
        """The other order is clearly better (module docstring)."""
        return self.other_accuracy - self.accuracy >= MARGIN and self.p < ALPHA

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"other": self.other, "other_better": self.other_better}


def other_order(color: str) -> str:
    return "RGB" if color == "BGR" else "BGR"


def channel_check(
    model: torch.nn.Module, images: torch.Tensor, labels: np.ndarray, pre: Preprocessing
) -> ChannelCheck:
    """Accuracy of ``model`` on ``images`` (``uint8 [n, h, w, 3]``, resized, RGB) with class
    indices ``labels [n]``, under ``pre`` and under ``pre`` with the other channel order."""
    unit = to_unit(images)
    flipped = dataclasses.replace(pre, color=other_order(pre.color))
    right = []
    with torch.no_grad():
        for p in (pre, flipped):
            pred = torch.cat([outputs.predicted(model(normalize(u, p))) for u in unit.split(64)])
            right.append(pred.numpy() == labels)
    b = int((right[0] & ~right[1]).sum())  # right only as adopted
    c = int((right[1] & ~right[0]).sum())  # right only in the other order
    p_value = 1.0
    if b + c:
        from scipy.stats import binomtest

        p_value = float(binomtest(c, b + c, 0.5).pvalue)
    n = len(labels)
    return ChannelCheck(pre.color, float(right[0].mean()), float(right[1].mean()), n, p_value)
