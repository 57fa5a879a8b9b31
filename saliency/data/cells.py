"""Groups, classes and analysis cells (DESIGN.md, "Analysis cells").

A cell is a subgroup joined to a class key: ``AA_F`` is group ``AA`` with the class whose
name starts with ``F``. The key is the class's upper-case initial, or the full class name
when two classes share an initial. Everywhere a command takes ``--group`` it accepts a
subgroup, a cell, or ``all``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ALL = "all"


def class_keys(classes: list[str]) -> dict[str, str]:
    """Map each class name to its cell key: initial upper-cased, or the full name on a clash."""
    initials = [c[:1].upper() for c in classes]
    return {
        c: (i if initials.count(i) == 1 and i else c)
        for c, i in zip(classes, initials, strict=True)
    }


def cell_name(group: str, label: str, classes: list[str]) -> str:
    """``AA`` + ``female`` -> ``AA_F``; an empty group gives just the class key."""
    key = class_keys(classes)[label]
    return f"{group}_{key}" if group else key


def cell_column(df: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """The cell of every row of a manifest-like frame (``group``, ``label`` columns)."""
    keys = class_keys(classes)
    key = df["label"].map(keys).fillna(df["label"])
    group = df["group"].fillna("").astype(str)
    return np.where(group == "", key, group + "_" + key)


def standard_selections(df: pd.DataFrame, classes: list[str]) -> list[tuple[str, np.ndarray]]:
    """``(name, row mask)`` for all, each subgroup, each class and (when there are
    subgroups) each cell of a manifest-like frame: the rows of every per-group table."""
    out = [("all", np.ones(len(df), bool))]
    groups = sorted(set(df["group"]) - {""})
    out += [(g, (df["group"] == g).to_numpy()) for g in groups]
    out += [(c, (df["label"] == c).to_numpy()) for c in classes]
    if groups:
        cells = cell_column(df, classes)
        out += [(c, cells == c) for c in sorted(set(cells))]
    return out


@dataclass(frozen=True)
class GroupSpec:
    """A parsed ``--group`` value: everyone, a subgroup, or a (subgroup, class) cell."""

    text: str
    group: str | None  # None: any group
    label: str | None  # None: any class

    def mask(self, df: pd.DataFrame) -> np.ndarray:
        keep = np.ones(len(df), dtype=bool)
        if self.group is not None:
            keep &= (df["group"].astype(str) == self.group).to_numpy()
        if self.label is not None:
            keep &= (df["label"].astype(str) == self.label).to_numpy()
        return keep


def valid_group_specs(groups: list[str], classes: list[str]) -> list[str]:
    """Every value ``--group`` accepts for these groups and classes, in display order."""
    keys = class_keys(classes)
    cells = [f"{g}_{keys[c]}" for g in groups for c in classes]
    return [ALL, *groups, *cells]


def parse_group(text: str, groups: list[str], classes: list[str]) -> GroupSpec:
    """Parse a ``--group`` value; an unknown one raises ``ValueError`` listing the valid ones."""
    if text == ALL:
        return GroupSpec(text, None, None)
    if text in groups:
        return GroupSpec(text, text, None)
    by_key = {k: c for c, k in class_keys(classes).items()}
    if "_" in text:
        group, key = text.rsplit("_", 1)
        if group in groups and key in by_key:
            return GroupSpec(text, group, by_key[key])
    valid = ", ".join(valid_group_specs(groups, classes))
    raise ValueError(f"unknown group {text!r}; valid values: {valid}")


def present_groups(df: pd.DataFrame) -> list[str]:
    """Non-empty subgroup names present in a frame, sorted."""
    return sorted(g for g in set(df["group"].astype(str)) if g)
