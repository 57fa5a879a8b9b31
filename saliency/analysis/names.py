"""Names of the analysis options, importable without torch or pandas (for the CLI)."""

from __future__ import annotations

NORMS: tuple[str, ...] = ("max", "minmax", "sum", "none")  # per-map normalizations
OUTCOMES: tuple[str, ...] = (
    "all",
    "correct",
    "incorrect",
)  # the outcome selections (--outcomes, alias --split)
PENALTIES: tuple[str, ...] = ("firth", "ridge")  # of the attributes' logistic regression
