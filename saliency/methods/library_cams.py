"""ScoreCAM and EigenCAM through pytorch-grad-cam (optional; not in the defaults).

They are not raw: the library returns, per image, ReLU then min-max to [0, 1] after resizing
to the input (that is what is stored, and ``meta.json`` says so). ScoreCAM costs one forward
pass per channel of the last block (512 for ResNet-18) per image; EigenCAM is the first
principal component of the last block's maps and ignores the target class.
"""

from __future__ import annotations

import torch

from saliency.methods.base import Context, Method
from saliency.methods.names import LIBRARY_METHODS
from saliency.models.camnet import CamNet

LIBRARY_UNITS = "pytorch-grad-cam output: ReLU, then min-max to [0, 1] per image (not raw)"


class _ScoreTarget:
    """The target class's score under the one-logit convention (DESIGN.md)."""

    def __init__(self, k: int):
        self.k = k

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if output.shape[-1] == 1:
            return output[..., 0] if self.k == 1 else -output[..., 0]
        return output[..., self.k]


def library_cam(model: CamNet, x: torch.Tensor, target: torch.Tensor, name: str) -> torch.Tensor:
    """Maps ``[N, H, W]`` (library-normalized) of ``scorecam`` or ``eigencam``."""
    import pytorch_grad_cam as pgc

    cls = {"scorecam": pgc.ScoreCAM, "eigencam": pgc.EigenCAM}.get(name)
    if cls is None:
        raise ValueError(f"unknown library method {name!r}; valid: {', '.join(LIBRARY_METHODS)}")
    layer = model.feature_layer
    with cls(model=model, target_layers=[layer]) as cam:
        if name == "scorecam":
            cam.batch_size = 64
        maps = cam(input_tensor=x, targets=[_ScoreTarget(int(t)) for t in target])
    return torch.from_numpy(maps).to(x.device)


def _method(name: str) -> Method:
    def compute(ctx: Context) -> torch.Tensor:
        return library_cam(ctx.model, ctx.x, ctx.target, name)

    return Method(name, False, LIBRARY_UNITS, frozenset(), compute)


METHODS: tuple[Method, ...] = tuple(_method(n) for n in LIBRARY_METHODS)
