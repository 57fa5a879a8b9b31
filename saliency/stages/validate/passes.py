"""The model passes of ``saliency validate``: maps of re-initialized copies (the cascading
randomization) and the deletion and insertion curves, on a fixed subset of explained images.

Everything stays in memory: these maps are compared, never stored. A method here is any
callable ``(model, unit [N, 3, H, W] in [0, 1], target [N]) -> maps [N, H, W]`` (numpy);
:func:`method_maps` makes one from a registered method and the run's explain settings, and
tests pass their own (a map that ignores the model must fail the check).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from saliency.analysis.similarity import similarities
from saliency.methods.base import MEAN_FACE
from saliency.methods.registry import explain_batch, method_settings
from saliency.models.preprocess import Preprocessing
from saliency.models.randomize import cascade_blocks, randomized
from saliency.perturb.curves import area, curves, pixel_order, random_order

MapFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], np.ndarray]


def method_maps(
    method: str,
    pre: Preprocessing,
    settings: Any = None,
    mean_face: torch.Tensor | None = None,
    upsample: str = "receptive-field",
    batch_size: int = 32,
) -> MapFn:
    """A :data:`MapFn` for a registered method with the run's settings: ``settings`` maps
    method names to their settings, or is one settings object (the run's ``IGConfig``), used
    by the method whose settings type it is; ``mean_face [3, H, W]`` in [0, 1] is run data
    for the methods that need it. Grid methods use the upsampling geometry measured once, on
    the first model given (the trained one): the geometry is the architecture's, and the
    stored maps used the same."""
    from saliency.methods.geometry import grid_geometry

    own = dict(settings) if isinstance(settings, Mapping) else method_settings(settings)
    data = {} if mean_face is None else {MEAN_FACE: mean_face}
    measured = {}

    def compute(model, unit: torch.Tensor, target: torch.Tensor) -> np.ndarray:
        if "g" not in measured:
            measured["g"] = grid_geometry(model, pre.size, upsample)
        geometry = measured["g"]
        out = []
        for s in range(0, len(unit), batch_size):
            t = target[s : s + batch_size]
            res, _ = explain_batch(
                model, unit[s : s + batch_size], pre, [method],
                lambda logits, t=t: t.to(logits.device), own, data=data, geometry=geometry,
            )  # fmt: skip
            out.append(res.maps[method].detach().float().cpu().numpy())
        return np.concatenate(out)

    return compute


def cascade(
    model: torch.nn.Module,
    unit: torch.Tensor,
    target: torch.Tensor,
    methods: dict[str, MapFn],
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Cascading randomization: for step ``k = 1..B`` the first ``k`` blocks from the head
    (:func:`saliency.models.randomize.cascade_blocks`) are re-initialized, and each
    method's maps of the copy are compared with the trained model's, image by image.
    Returns per-image rows: method, step, block (the last one randomized), image and the
    similarity measures (:mod:`saliency.analysis.similarity`)."""
    blocks = [name for name, _ in cascade_blocks(model)]
    trained = {m: fn(model, unit, target) for m, fn in methods.items()}
    rows = []
    for k in range(1, len(blocks) + 1):
        copy = randomized(model, k, seed)
        for m, fn in methods.items():
            sim = similarities(trained[m], fn(copy, unit, target))
            frame = pd.DataFrame(sim)
            frame.insert(0, "image", np.arange(len(unit)))
            frame.insert(0, "block", blocks[k - 1])
            frame.insert(0, "step", k)
            frame.insert(0, "method", m)
            rows.append(frame)
        if progress is not None:
            progress(1)
    return pd.concat(rows, ignore_index=True)


def perturbation_curves(
    model: torch.nn.Module,
    images: torch.Tensor,
    pre: Preprocessing,
    target: torch.Tensor,
    maps: dict[str, np.ndarray],
    steps: int = 16,
    fill: str = "blur",
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Deletion and insertion curves ``[N, steps + 1]`` per method (orders from ``maps``,
    each ``[N, H, W]``) and for a random order (``"random"``), and their areas ``[N]``.
    ``images``: ``uint8 [N, H, W, 3]`` at the model's input size."""
    gen = torch.Generator().manual_seed(seed)
    n, h, w, _ = images.shape
    orders = {m: pixel_order(torch.tensor(np.asarray(v)), gen) for m, v in maps.items()}
    orders["random"] = random_order(n, h * w, gen)
    out, areas = {}, {}
    for name, order in orders.items():
        d, i = curves(model, images, pre, order, target, steps, fill)
        out[name] = (d.numpy(), i.numpy())
        areas[name] = (area(out[name][0]), area(out[name][1]))
        if progress is not None:
            progress(1)
    return out, areas
