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
from saliency.distributed import World, all_gather, span
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
    rows: tuple[int, int] | None = None,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Deletion and insertion curves ``[N, steps + 1]`` per method (orders from ``maps``,
    each ``[N, H, W]``) and for a random order (``"random"``), and their areas ``[N]``.
    ``images``: ``uint8 [N, H, W, 3]`` at the model's input size. ``rows``: only images
    ``[lo, hi)`` (a rank's share; the orders are drawn for all ``N`` first, so each image's
    random order is the one-process one); the arrays then hold ``hi - lo`` rows."""
    gen = torch.Generator().manual_seed(seed)
    n, h, w, _ = images.shape
    orders = {m: pixel_order(torch.tensor(np.asarray(v)), gen) for m, v in maps.items()}
    orders["random"] = random_order(n, h * w, gen)
    lo, hi = rows or (0, n)
    out, areas = {}, {}
    for name, order in orders.items():
        d, i = curves(model, images[lo:hi], pre, order[lo:hi], target[lo:hi], steps, fill)
        out[name] = (d.numpy(), i.numpy())
        areas[name] = (area(out[name][0]), area(out[name][1]))
        if progress is not None:
            progress(1)
    return out, areas


Curves = dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (deletion, insertion)


def spread_cascade(
    model: torch.nn.Module, unit: torch.Tensor, target: torch.Tensor, methods: dict[str, MapFn],
    seed: int, progress: Callable[[int], None] | None, world: World,
) -> pd.DataFrame:  # fmt: skip
    """:func:`cascade` with the images shared among torchrun's ranks (each its contiguous
    span; the randomized copies are the same on every rank, seeded): every rank gets the
    whole table, rows in one-process order (step, method, image)."""
    if world.size == 1:
        return cascade(model, unit, target, methods, seed, progress)
    lo, hi = span(len(unit), world.rank, world.size)
    mine = None
    if hi > lo:
        mine = cascade(model, unit[lo:hi], target[lo:hi], methods, seed, progress)
        mine["image"] += lo
    found = [f for f in all_gather(mine) if f is not None]
    if not found:
        return cascade(model, unit, target, methods, seed, progress)  # no image at all
    table = pd.concat(found, ignore_index=True)
    rank = {m: k for k, m in enumerate(methods)}
    key = table["step"] * len(rank) + table["method"].map(rank)
    return table.assign(_k=key).sort_values(["_k", "image"], kind="stable").drop(columns="_k")\
        .reset_index(drop=True)  # fmt: skip


def spread_curves(
    model: torch.nn.Module, images: torch.Tensor, pre: Preprocessing, target: torch.Tensor,
    maps: dict[str, np.ndarray], steps: int, fill: str, seed: int,
    progress: Callable[[int], None] | None, world: World,
) -> tuple[Curves, Curves]:  # fmt: skip
    """:func:`perturbation_curves` with the images shared among torchrun's ranks: every rank
    gets every image's curves and areas, in image order."""
    if world.size == 1:
        return perturbation_curves(model, images, pre, target, maps, steps, fill, seed, progress)
    lo, hi = span(len(images), world.rank, world.size)
    mine = None
    if hi > lo:
        mine = perturbation_curves(model, images, pre, target, maps, steps, fill, seed,
                                   progress, rows=(lo, hi))  # fmt: skip
    found = [f for f in all_gather(mine) if f is not None]
    names = list(found[0][0])
    out = {k: tuple(np.concatenate([f[0][k][j] for f in found]) for j in (0, 1)) for k in names}
    areas = {k: tuple(np.concatenate([f[1][k][j] for f in found]) for j in (0, 1)) for k in names}
    return out, areas
