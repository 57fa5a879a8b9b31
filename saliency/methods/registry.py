"""The method registry and one fused pass per batch that computes every requested map.

For a batch, the last block's maps ``A`` are computed once, and the logits that decide the
prediction come from those same maps; the head gradient is computed once when any method
needs it (the whole Grad-CAM family shares that one backward); each method then computes
from what the pass shares (:class:`saliency.methods.base.Context`), with its own settings.
Grid methods are brought to input size by the run's upsampling geometry. Everything stays
on the device.

Adding a method: one module that defines a :class:`~saliency.methods.base.Method` and one
:func:`register` call (below for the built-in ones, whose names are also listed in
:mod:`saliency.methods.names` for the torch-free command line). The fused pass and the
explain stage ask the record for everything else (settings, columns, preparation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from saliency.methods import cam, gradcam, ig, library_cams
from saliency.methods.base import HEAD_GRADIENT, Context, Method
from saliency.methods.geometry import GridGeometry, grid_geometry, upsample
from saliency.methods.gradcam import head_gradients
from saliency.methods.ig_settings import IGConfig
from saliency.methods.names import GRID_METHODS, METHODS
from saliency.models.camnet import CamNet
from saliency.models.preprocess import Preprocessing, normalize

__all__ = [
    "REGISTRY", "BatchResult", "IGConfig", "check_methods", "explain_batch", "method_settings",
    "register",
]  # fmt: skip

REGISTRY: dict[str, Method] = {}  # filled by register() only


def register(method: Method) -> Method:
    """Add ``method`` to the registry (a plugin's one call); returns it. A name, or an
    ``index.csv`` column, that another registered method already uses is an error."""
    if not isinstance(method, Method):
        raise TypeError(f"register takes a saliency.methods.base.Method, not {method!r}")
    old = REGISTRY.get(method.name)
    if old is not None and old is not method:
        raise ValueError(f"a method named {method.name!r} is already registered")
    taken = {c for m in REGISTRY.values() if m is not method for c in m.columns}
    if clash := sorted(taken & set(method.columns)):
        raise ValueError(f"{method.name}: index column(s) {clash} belong to another method")
    REGISTRY[method.name] = method
    return method


for _m in (cam.METHOD, *gradcam.METHODS, ig.METHOD, *library_cams.METHODS):
    register(_m)
assert tuple(REGISTRY) == METHODS  # the names module lists exactly the built-in methods
assert tuple(m.name for m in REGISTRY.values() if m.grid) == GRID_METHODS


PLUGINS = "saliency.methods"  # the entry-point group of other packages' methods


def load_plugins() -> None:
    """Register the methods other packages offer through the ``saliency.methods`` entry-point
    group (each names a :class:`Method`); loading one twice is a no-op."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGINS):
        if ep.name in REGISTRY and REGISTRY[ep.name].name in METHODS:
            continue  # a package may not replace a built-in method
        method = ep.load()
        if not isinstance(method, Method) or method.name != ep.name:
            raise ValueError(
                f"entry point {ep.name} of {PLUGINS} must name a Method called {ep.name!r}"
            )
        register(method)


def check_methods(names: list[str]) -> list[str]:
    """``names`` without repeats, after checking each is registered (``ValueError`` lists
    the valid ones, also for an empty list). Other packages' methods are loaded first."""
    if any(m not in REGISTRY for m in names):
        load_plugins()
    unknown = [m for m in names if m not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; valid: {', '.join(REGISTRY)}")
    if not names:
        raise ValueError(f"no method given; valid: {', '.join(REGISTRY)}")
    return list(dict.fromkeys(names))


def method_settings(*values: Any) -> dict[str, Any]:
    """Method name -> settings, for every registered method whose settings type is among
    ``values`` (e.g. a stage config's field values: ``ExplainConfig.ig`` is IG's)."""
    out = {}
    for m in REGISTRY.values():
        found = [v for v in values if m.settings is not None and isinstance(v, m.settings)]
        if found:
            out[m.name] = found[0]
    return out


@dataclass
class BatchResult:
    logits: torch.Tensor  # [N, n_outputs], from the same tensor that is explained
    maps: dict[str, torch.Tensor]  # method -> [N, H, W]
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # column -> [N]


def explain_batch(
    model: CamNet,
    unit: torch.Tensor,
    pre: Preprocessing,
    methods: list[str],
    choose_target: Callable[[torch.Tensor], torch.Tensor],
    settings: Mapping[str, Any] | None = None,
    *,
    data: Mapping[str, torch.Tensor] | None = None,
    prepared: Mapping[str, torch.nn.Module] | None = None,
    geometry: GridGeometry | None = None,
) -> tuple[BatchResult, torch.Tensor]:
    """All requested maps for one batch of images ``unit [N, 3, H, W]`` in [0, 1].

    ``choose_target(logits) -> [N]`` picks each row's target class from the logits.
    ``settings`` maps a method's name to its settings (missing: the method's defaults);
    ``data`` is the run data methods need (e.g. ``mean_face``); ``prepared`` maps a method's
    name to the model its own passes run on (its preparation step's result). The logits and
    the CAM-type maps always come from ``model`` itself, brought to input resolution by
    ``geometry`` (None: measured here; pass it in when explaining many batches). No methods:
    the logits and targets only. Returns the result and the targets.
    """
    chosen = [REGISTRY[m] for m in check_methods(methods)] if methods else []
    own = {}
    for m in chosen:
        value = (settings or {}).get(m.name)
        if m.settings is not None and value is not None and not isinstance(value, m.settings):
            raise TypeError(f"{m.name} takes {m.settings.__name__} settings, not {value!r}")
        own[m.name] = m.defaults() if value is None else value
    x = normalize(unit, pre)
    size = tuple(x.shape[-2:])
    if geometry is None and any(m.grid for m in chosen):
        geometry = grid_geometry(model, size)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model.head(feats)
    target = choose_target(logits)
    ctx = Context(model, unit, x, pre, target, feats, settings=own, data=dict(data or {}),
                  prepared=dict(prepared or {}))  # fmt: skip
    if any(HEAD_GRADIENT in m.needs for m in chosen):
        ctx.head_gradient = head_gradients(model, feats, target)
    maps = {}
    for m in chosen:
        out = m.compute(ctx)
        maps[m.name] = upsample(out, size, geometry) if m.grid else out
    return BatchResult(logits, maps, ctx.extras), target
