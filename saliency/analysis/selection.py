"""Selections shared by the analysis commands: ``--outcomes`` (alias ``--split``),
``--groups`` (alias ``--group``), ``--label`` (alias ``--class``).

The outcome is which predictions: ``all``, ``correct`` or ``incorrect`` (never a data split).
``--group`` is a subgroup, a cell (``AA_F``) or ``all`` (see :mod:`saliency.data.cells`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from saliency.analysis.names import OUTCOMES
from saliency.data.cells import ALL, class_keys, parse_group, present_groups


@dataclass(frozen=True)
class Selection:
    outcome: str = "all"
    group: str = ALL
    label: str | None = None  # a class name

    def name(self, method: str, split: str) -> str:
        parts = [method, self.outcome, self.group] + ([self.label] if self.label else [])
        return "_".join(parts) if split == "test" else "_".join([method, split, *parts[1:]])

    def describe(self) -> str:
        bits = [self.group] + ([f"class {self.label}"] if self.label else [])
        return f"{', '.join(bits)}, {self.outcome} predictions"


def check_outcome(outcome: str) -> str:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; valid: {', '.join(OUTCOMES)}")
    return outcome


def check_class(label: str | None, classes: list[str]) -> str | None:
    if label is None or label in classes:
        return label
    by_key = {k: c for c, k in class_keys(classes).items()}
    if label in by_key:
        return by_key[label]
    raise ValueError(f"unknown class {label!r}; valid: {', '.join(classes)}")


def select(index: pd.DataFrame, sel: Selection, classes: list[str]) -> np.ndarray:
    """Boolean mask over the rows of a maps index for one selection (validated)."""
    check_outcome(sel.outcome)
    label = check_class(sel.label, classes)
    spec = parse_group(sel.group, present_groups(index), classes)
    keep = spec.mask(index)
    correct = index["correct"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    if sel.outcome == "correct":
        keep &= correct
    elif sel.outcome == "incorrect":
        keep &= ~correct
    if label is not None:
        keep &= (index["label"] == label).to_numpy()
    return keep


def default_groups(index: pd.DataFrame, classes: list[str]) -> list[str]:
    """``all``, every subgroup, every cell: what ``average`` writes without ``--group``."""
    groups = present_groups(index)
    keys = class_keys(classes)
    return [ALL, *groups, *[f"{g}_{keys[c]}" for g in groups for c in classes]]


def region_selections(
    index: pd.DataFrame,
    classes: list[str],
    outcomes: list[str] | None = None,
    groups: list[str] | None = None,
    label: str | None = None,
) -> list[Selection]:
    """The selections the region analyses report: each outcome (default all three) times
    ``groups`` when given, else all, every subgroup and (without ``label``) every class and
    cell. Unknown values raise ``ValueError`` listing the valid ones."""
    outcomes = [check_outcome(o) for o in (outcomes or OUTCOMES)]
    label = check_class(label, classes)
    present = present_groups(index)
    if groups:
        for g in groups:
            parse_group(g, present, classes)
        return [Selection(o, g, label) for o in outcomes for g in groups]
    keys = class_keys(classes)
    sels = []
    for o in outcomes:
        sels += [Selection(o, ALL, label), *(Selection(o, g, label) for g in present)]
        if label is None:
            sels += [Selection(o, ALL, c) for c in classes]
            sels += [Selection(o, f"{g}_{keys[c]}") for g in present for c in classes]
    return sels
