"""Names of the face stages' options, importable without OpenCV or torch (for the CLI)."""

from __future__ import annotations

BACKENDS: tuple[str, ...] = ("dlib", "fan", "columns")  # landmark backends
POLICIES: tuple[str, ...] = ("largest", "skip")  # several faces: keep the largest, or skip
SOURCES: tuple[str, ...] = ("auto", "synthetic", "parsing", "landmarks")  # region mask sources
