"""Cut any traceable classifier at one layer into ``features`` (input -> that layer's maps)
and ``rest`` (maps -> outputs), so an adopted model meets the model protocol.

The model becomes a ``torch.fx`` graph (a GraphModule from onnx2torch or ``torch.export``
is used as it is; any other module is traced with the named layer kept whole). The layer is
a graph node: by default the last one, in execution order, whose output is a 4-D map with
more than one cell (adaptive pooling excluded), which is the last convolutional block of a
CNN. ``rest`` is every node after the cut that the output needs; it may read the cut maps
and parameters only, so a head that reaches back to earlier activations (a skip past the
cut) is refused with the node that does it. A trailing softmax or log-softmax is cut off
(maps explain logits, DESIGN.md "Adopted models").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx, nn

SOFTMAX_FUNCTIONS = {
    torch.softmax,
    torch.log_softmax,
    torch.nn.functional.softmax,
    torch.nn.functional.log_softmax,
    torch.ops.aten.softmax.int,
    torch.ops.aten._softmax.default,
    torch.ops.aten.log_softmax.int,
    torch.ops.aten._log_softmax.default,
}
SOFTMAX_MODULES = (nn.Softmax, nn.LogSoftmax)
POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
POOL_FUNCTIONS = {
    torch.nn.functional.adaptive_avg_pool2d,
    torch.nn.functional.adaptive_max_pool2d,
    torch.ops.aten.adaptive_avg_pool2d.default,
    torch.ops.aten._adaptive_avg_pool2d.default,
}


class SplitError(ValueError):
    """The model cannot be cut at the chosen layer (the message says why and what to do)."""


class _KeepWhole(fx.Tracer):
    def __init__(self, leaf: str | None):
        super().__init__()
        self.leaf = leaf

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname == self.leaf or super().is_leaf_module(m, qualname)


def as_graph(
    model: nn.Module, leaf: str | None = None, example: torch.Tensor | None = None
) -> fx.GraphModule:
    """``model`` as a GraphModule; ``leaf`` (a module path) stays one node. A model that
    torch.fx cannot trace is exported with ``torch.export`` on ``example`` (``[N, 3, h, w]``;
    any batch size) when one is given: its nodes keep their module paths."""
    if isinstance(model, fx.GraphModule):
        return model
    try:
        graph = _KeepWhole(leaf).trace(model)
    except Exception as exc:  # data-dependent control flow and the like
        if example is not None:
            return export_graph(model, example)
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SplitError(
            f"torch.fx cannot trace the model ({why}); export it to ONNX or with torch.export "
            "and adopt that file"
        ) from exc
    return fx.GraphModule(model, graph, model.__class__.__name__)


def export_graph(model: nn.Module, example: torch.Tensor) -> fx.GraphModule:
    """``model`` exported with ``torch.export`` for inputs shaped like ``example`` with any
    batch size, as a GraphModule."""
    batch = torch.export.Dim("batch", min=1)
    x = example[:2] if len(example) >= 2 else example.expand(2, *example.shape[1:])
    try:
        program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},), strict=False)
    except Exception as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SplitError(
            f"neither torch.fx nor torch.export can capture the model ({why}); export it to "
            "ONNX and adopt that file"
        ) from exc
    return program.module()


class _Shapes(fx.Interpreter):
    """Runs the graph once and keeps each node's output shape."""

    def __init__(self, gm: fx.GraphModule):
        super().__init__(gm)
        self.shapes: dict[str, tuple[int, ...]] = {}

    def run_node(self, n: fx.Node):
        out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            self.shapes[n.name] = tuple(out.shape)
        return out


def node_shapes(gm: fx.GraphModule, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Output shape of every tensor-valued node for input ``x [N, 3, H, W]``."""
    interp = _Shapes(gm)
    with torch.no_grad():
        interp.run(x)
    return interp.shapes


def _leaf_nodes(value) -> list:
    """The leaves of a graph's output structure, in flattening order (models.adopted.outputs)."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaf_nodes(v)]
    if isinstance(value, list | tuple):
        return [leaf for v in value for leaf in _leaf_nodes(v)]
    return [value]


def result_node(gm: fx.GraphModule, index: int | None = None) -> fx.Node:
    """The node whose value the graph returns: output ``index`` (flat, as
    models.adopted.outputs counts them) of a model with several, else the only one."""
    out = next(n for n in gm.graph.nodes if n.op == "output")
    found = _leaf_nodes(out.args[0])
    if not found:
        raise SplitError("the model returns nothing")
    if index is not None and index >= len(found):
        raise SplitError(f"the model has {len(found)} outputs, not output {index}")
    value = found[index or 0]
    if not isinstance(value, fx.Node):
        raise SplitError("the model's output is not a tensor")
    return value


def _is_softmax(gm: fx.GraphModule, n: fx.Node) -> bool:
    if n.op == "call_function":
        return n.target in SOFTMAX_FUNCTIONS
    if n.op == "call_method":
        return n.target in ("softmax", "log_softmax")
    if n.op == "call_module":
        mod = gm.get_submodule(n.target)
        name = type(mod).__name__.lower()
        return isinstance(mod, SOFTMAX_MODULES) or name in ("onnxsoftmax", "onnxlogsoftmax")
    return False


def strip_softmax(gm: fx.GraphModule, index: int | None = None) -> tuple[fx.Node, str | None]:
    """The graph's logits node (of output ``index``, :func:`result_node`): the input of a
    trailing softmax or log-softmax, cut off (returns it and what was cut), or the result
    itself (and ``None``)."""
    res = result_node(gm, index)
    if _is_softmax(gm, res):
        what = (
            type(gm.get_submodule(res.target)).__name__ if res.op == "call_module" else res.target
        )
        return res.args[0], "log-softmax" if "log" in str(what).lower() else "softmax"
    return res, None


def _is_pool(gm: fx.GraphModule, n: fx.Node) -> bool:
    if n.op == "call_module":
        mod = gm.get_submodule(n.target)
        return isinstance(mod, POOLS) or "globalaveragepool" in type(mod).__name__.lower()
    return n.op == "call_function" and n.target in POOL_FUNCTIONS


def ancestors(node: fx.Node) -> set[fx.Node]:
    """``node`` and every node it depends on."""
    seen, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(n.all_input_nodes)
    return seen


def last_block(gm: fx.GraphModule, logits: fx.Node, shapes: dict[str, tuple[int, ...]]) -> fx.Node:
    """The default cut: the last node the logits need whose output is a 4-D map of more
    than one cell, adaptive pooling excluded."""
    needed = ancestors(logits)
    found = None
    for n in gm.graph.nodes:
        shape = shapes.get(n.name)
        if n not in needed or n.op in ("placeholder", "get_attr") or shape is None:
            continue
        if len(shape) == 4 and shape[2] * shape[3] > 1 and not _is_pool(gm, n):
            found = n
    if found is None:
        raise SplitError("the model has no 4-D feature map to explain; is it a CNN?")
    return found


def _module_paths(n: fx.Node) -> list[str]:
    """The module paths a node of an exported graph runs inside (``torch.export`` keeps them
    in ``nn_module_stack``), outermost first."""
    stack = n.meta.get("nn_module_stack") or {}
    return [str(v[0]) for v in stack.values() if isinstance(v, tuple) and v]


def find_node(gm: fx.GraphModule, name: str) -> fx.Node:
    """The node ``name`` names: a node name, or the module path of a call_module node
    (the last call when the module runs several times), or in an exported graph the last
    node computed inside that module (its output)."""
    by_name = [n for n in gm.graph.nodes if n.name == name]
    by_module = [n for n in gm.graph.nodes if n.op == "call_module" and n.target == name]
    if by_name or by_module:
        return (by_name or by_module)[-1]
    inside = [n for n in gm.graph.nodes if n.op == "call_function" and name in _module_paths(n)]
    if inside:
        return inside[-1]
    layers = [n.target if n.op == "call_module" else n.name for n in gm.graph.nodes]
    hint = ", ".join(str(s) for s in layers[-8:-1])
    raise SplitError(f"--target-layer {name}: no such layer; the last ones are {hint}")


@dataclass
class Split:
    features: fx.GraphModule  # x [N, 3, H, W] -> maps [N, C, h, w] (with carry: a tuple)
    rest: fx.GraphModule  # maps (, *carried) -> outputs [N, K] (before any cut-off softmax)
    node: str  # the cut node's name
    layer: str  # what to call it: the module path of a module call, else the node's name
    softmax: str | None  # "softmax" or "log-softmax" when one was cut off the end
    carried: int = 0  # earlier values the rest also reads (a transformer's residual stream)


def split(
    gm: fx.GraphModule, cut: fx.Node, logits: fx.Node, carry: bool = False
) -> tuple[fx.GraphModule, fx.GraphModule, int]:
    """``features`` computes ``cut`` from the input; ``rest`` computes ``logits`` from it.
    With ``carry``, earlier values the rest also reads (a transformer block's residual input
    beside its first norm's output) are computed by ``features`` after ``cut`` and passed to
    ``rest`` after it; without, such a skip past the cut is refused. Returns both and the
    number carried."""
    before = ancestors(cut)
    needed = ancestors(logits)
    if cut not in needed:
        raise SplitError(f"the output does not depend on {cut.name}; choose another --target-layer")
    g2 = fx.Graph()
    env2 = {cut: g2.placeholder("maps")}
    carried: list[fx.Node] = []
    for n in gm.graph.nodes:
        if n not in needed or n in env2 or (n in before and n.op != "get_attr"):
            continue
        if n.op == "get_attr" and not any(u in needed and u not in before for u in n.users):
            continue
        for a in n.all_input_nodes:
            if a in before and a is not cut and a.op != "get_attr" and a not in carried:
                if not carry:
                    raise SplitError(
                        f"the layers after {cut.name} also read {a.name} (node {n.name}), so "
                        "the model cannot be cut there; choose a later --target-layer"
                    )
                carried.append(a)
                env2[a] = g2.placeholder(f"carried_{len(carried)}")
        env2[n] = g2.node_copy(n, lambda a: env2[a])
    g2.output(env2[logits])
    g1, env1 = fx.Graph(), {}
    keep = set().union(*(ancestors(a) for a in [cut, *carried]))
    for n in gm.graph.nodes:
        if n in keep:
            env1[n] = g1.node_copy(n, lambda a: env1[a])
    g1.output((env1[cut], *(env1[a] for a in carried)) if carried else env1[cut])
    features = fx.GraphModule(gm, g1, "Features")
    return features, fx.GraphModule(gm, g2, "Rest"), len(carried)


def cut_model(
    model: nn.Module,
    x: torch.Tensor | None,
    target: str | None = None,
    node: str | None = None,
    output: int | None = None,
    carry: bool = False,
) -> Split:
    """Cut ``model`` at ``node`` (a recorded node name), at ``target`` (what the user
    named), or at its last block (found by running ``x``); ``output``: the flat index of the
    output to keep, of a model with several (the nodes only the others need are dropped);
    ``carry``: let the rest read earlier values too (:func:`split`)."""
    modules = dict(model.named_modules())
    leaf = target if target in modules and not isinstance(model, fx.GraphModule) else None
    gm = as_graph(model, leaf, x)
    logits, cut_off = strip_softmax(gm, output)
    if node is not None:
        cut = find_node(gm, node)
    elif target is not None:
        cut = find_node(gm, target)
    else:
        if x is None:
            raise ValueError("finding the last block needs an input batch")
        cut = last_block(gm, logits, node_shapes(gm, x))
    features, rest, carried = split(gm, cut, logits, carry)
    layer = str(cut.target) if cut.op == "call_module" else cut.name
    if cut.op == "call_function" and target is not None:
        layer = target
    return Split(features, rest, cut.name, layer, cut_off, carried)
