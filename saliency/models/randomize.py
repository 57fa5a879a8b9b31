"""Model-parameter randomization (Adebayo et al., NeurIPS 2018): the blocks of a CAM-ready net
from the head down, and copies whose blocks are re-initialized.

A block is the linear head (``fc``; an adopted net without one: its layers after the cut),
then each child of ``features`` that holds parameters,
last first; a child that is a ``Sequential`` of blocks (a ResNet stage) gives one block per
residual block (``layer4.1``, ``layer4.0``, ...). Re-initializing calls each module's own
``reset_parameters`` (PyTorch's default initializers; batch norm also resets its running
statistics) under a seeded generator, so a randomization is reproducible and leaves the
global random state alone.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def _has_parameters(m: nn.Module) -> bool:
    return any(True for _ in m.parameters())


def cascade_blocks(model: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """``[(name, modules)]`` from the output to the input (module docstring)."""
    blocks: list[tuple[str, list[nn.Module]]] = []
    head, name = getattr(model, "fc", None), "fc"
    if head is None:  # an adopted net that is not CAM-ready: its own layers after the cut
        head, name = getattr(model, "rest", None), "head"
    if isinstance(head, nn.Module) and _has_parameters(head):
        blocks.append((name, [head]))
    features = getattr(model, "features", model)
    children = [(n, c) for n, c in features.named_children() if _has_parameters(c)]
    if not children and _has_parameters(features) and features is not model:
        children = [("features", features)]
    for name, child in reversed(children):
        inner = [(f"{name}.{n}", c) for n, c in child.named_children() if _has_parameters(c)]
        if isinstance(child, nn.Sequential) and inner:
            blocks += [(n, [c]) for n, c in reversed(inner)]
        else:
            blocks.append((name, [child]))
    return blocks


def _reset(module: nn.Module) -> int:
    """Re-initialize every submodule that knows how; returns how many did."""
    n = 0
    for m in module.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()
            n += 1
    return n


def randomized(model: nn.Module, upto: int, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose first ``upto`` cascade blocks (:func:`cascade_blocks`,
    head first) are re-initialized; ``upto = 0`` is an unchanged copy. The copy is in eval
    mode, on the model's device, with frozen parameters."""
    clone = copy.deepcopy(model)
    blocks = cascade_blocks(clone)
    if upto > len(blocks):
        raise ValueError(f"the model has {len(blocks)} blocks; cannot randomize {upto}")
    devices = [p.device for p in clone.parameters()] or [torch.device("cpu")]
    with torch.random.fork_rng(devices=[d for d in set(devices) if d.type == "cuda"]):
        torch.manual_seed(seed)
        for _, modules in blocks[:upto]:
            for m in modules:
                if _reset(m) == 0:
                    raise ValueError(f"{type(m).__name__} has parameters but no initializer")
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone.eval()


def reinitialized(model: nn.Module, seed: int = 0) -> nn.Module:
    """The same network with every block re-initialized (the floor of the verdict)."""
    return randomized(model, len(cascade_blocks(model)), seed)
