"""Names of the perturbation options, importable without OpenCV or torch (for the CLI)."""

from __future__ import annotations

FILLS: tuple[str, ...] = ("blur", "mean", "gray", "noise")  # region fills
MODES: tuple[str, ...] = ("delete", "keep")  # fill the region, or everything but it
FILL_PLACES: tuple[str, ...] = ("auto", "device", "workers")  # where the fills run
