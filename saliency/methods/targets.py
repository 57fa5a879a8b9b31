"""Target policy: which class each row's map explains (recorded with the maps)."""

from __future__ import annotations

import torch


def resolve_targets(
    policy: str, predicted: torch.Tensor, true: torch.Tensor, classes: list[str]
) -> torch.Tensor:
    """``predicted`` (default, as the reference study), ``true``, or a class name."""
    if policy == "predicted":
        return predicted
    if policy == "true":
        return true
    if policy in classes:
        return torch.full_like(predicted, classes.index(policy))
    raise ValueError(f"unknown target {policy!r}; valid: predicted, true, {', '.join(classes)}")
