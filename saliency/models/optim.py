"""The recipe's optimizer, learning-rate schedule and frozen layers, built for a CamNet.

- ``freeze``: ``none``; ``head`` trains the fully connected layer only; ``head+K`` also the
  backbone's last K blocks (its top-level modules that hold parameters: a ResNet's
  ``layer1..layer4`` after the stem's conv and norm, so ``head+1`` is layer4 and the fc).
  Frozen blocks take no gradient and stay in eval mode while training, so their batch-norm
  statistics (and any dropout in them) are those they were loaded with, bit for bit.
- ``optimizer``: Adam, AdamW, or SGD with momentum (optionally Nesterov), over the
  parameters that train.
- ``scheduler``: ``plateau`` (ReduceLROnPlateau on validation loss, stepped only once the
  model has left chance: models.train), ``step`` (x gamma every step_size epochs) and
  ``cosine`` (to 0 over the recipe's epochs), both stepped after every epoch.
"""

from __future__ import annotations

import torch
from torch import nn

from saliency.models.recipe import TrainConfig, freeze_blocks


def blocks(model: nn.Module) -> list[nn.Module]:
    """The backbone's blocks in order: the top-level modules of ``model.features`` that
    hold parameters."""
    return [m for m in model.features.children() if any(True for _ in m.parameters())]


def freeze(model: nn.Module, spec: str) -> list[nn.Module]:
    """Freeze the blocks ``spec`` leaves out (``none``, ``head``, ``head+K``); returns them.
    A K of at least the number of blocks trains everything."""
    k = freeze_blocks(spec)
    if k is None:
        return []
    found = blocks(model)
    frozen = found[: max(0, len(found) - k)]
    for m in frozen:
        m.requires_grad_(False)
    return frozen


def hold_frozen(frozen: list[nn.Module]) -> None:
    """Put the frozen blocks back in eval mode (after ``model.train()``): batch norm then
    normalizes with, and does not update, its running statistics."""
    for m in frozen:
        m.eval()


def optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The recipe's optimizer over the parameters that train. ``foreach``: one kernel per
    step for all tensors (torch's CPU default loops over them in Python, twice as slow
    here); the same arithmetic, bit for bit."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay, foreach=True)  # fmt: skip
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; valid: adam, adamw, sgd")


def scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig):
    """The recipe's learning-rate schedule (module docstring)."""
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
        )
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    raise ValueError(f"unknown scheduler {cfg.scheduler!r}; valid: plateau, step, cosine")
