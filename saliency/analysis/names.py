"""Names of the analysis options, importable without torch or pandas (for the CLI)."""

from __future__ import annotations

NORMS: tuple[str, ...] = ("max", "minmax", "sum", "none")  # per-map normalizations
MODES: tuple[str, ...] = ("delete", "keep")  # ablation: fill the region, or all but it
FILL_PLACES: tuple[str, ...] = ("auto", "device", "workers")  # where ablation fills run
OUTCOMES: tuple[str, ...] = ("all", "correct", "incorrect")  # the --split selections
