"""Which output of a model with several (``adopt --output-name``).

A model may return one tensor, a tuple or list of them, or a dict (nested ones too): the
outputs are its tensor leaves in flattening order (tuple and list order, dict insertion
order: the order ``torch.export`` and onnx2torch give their graphs' outputs). Each has a
name: an ONNX file's output name, a dict's key, a tuple's index (``"1"``; nested: ``"1.0"``).
The chosen one is kept by its flat index; the graph cut (models.adopted.graph) keeps only the
nodes that output needs, so the others cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Output:
    name: str
    shape: tuple[int, ...]  # one image's output shape (the batch dimension dropped)


def leaves(value: Any, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` of every tensor in ``value``, in flattening order."""
    if isinstance(value, torch.Tensor):
        return [(prefix, value)]
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return []
    out = []
    for key, v in items:
        out += leaves(v, f"{prefix}.{key}" if prefix else key)
    return out


def list_outputs(value: Any, names: list[str] | None = None) -> list[Output]:
    """The outputs of a model's result ``value`` (on a batch); ``names``: the ONNX file's
    output names, in order, which replace the positional ones."""
    found = leaves(value)
    if names is not None and len(names) == len(found):
        found = [(n, t) for n, (_, t) in zip(names, found, strict=True)]
    return [Output(n, tuple(int(s) for s in t.shape[1:])) for n, t in found]


def describe(outputs: list[Output]) -> str:
    """``age [1], gender [2]``: names and per-image shapes."""
    return ", ".join(f"{o.name} [{', '.join(str(s) for s in o.shape)}]" for o in outputs)


def choose(outputs: list[Output], name: str | None) -> int | None:
    """The flat index of output ``name``; ``None`` for a model with one output and no name.
    A model with several outputs and no name, or a name it does not have, is refused with
    the list."""
    if not outputs:
        raise ValueError("the model returns no tensor")
    if name is None:
        if len(outputs) == 1:
            return None
        raise ValueError(
            f"the model has {len(outputs)} outputs: {describe(outputs)}; choose the gender "
            "output with --output-name NAME"
        )
    for i, o in enumerate(outputs):
        if o.name == name:
            return i
    raise ValueError(f"--output-name {name}: the model's outputs are {describe(outputs)}")


def pick(value: Any, index: int | None) -> torch.Tensor:
    """Output ``index`` of a model's result ``value`` (the only one for ``None``)."""
    found = leaves(value)
    return found[0 if index is None else index][1]
