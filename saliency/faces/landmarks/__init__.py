"""Landmark backends behind one interface: ``dlib``, ``fan`` and ``columns``.

A backend maps an RGB image ``uint8 [H, W, 3]`` to the faces it finds, each a
:class:`~saliency.faces.landmarks.base.Face` with a box and landmarks in image pixels (68
iBUG 300-W points, or the 5 points alignment needs). One module per backend; dlib and FAN
are imported only when asked for.
"""

from __future__ import annotations

from saliency.faces.landmarks.base import FIVE, Backend, Face, box_of, five_points
from saliency.faces.names import BACKENDS

__all__ = ["BACKENDS", "FIVE", "Backend", "Face", "box_of", "five_points", "make_backend"]


def make_backend(name: str, **options) -> Backend:
    """A backend by name; options go to its constructor (e.g. ``predictor`` for dlib)."""
    if name == "columns":
        from saliency.faces.landmarks.columns import ColumnsBackend

        return ColumnsBackend()
    if name == "dlib":
        from saliency.faces.landmarks.dlib import DlibBackend

        return DlibBackend(**options)
    if name == "fan":
        from saliency.faces.landmarks.fan import FanBackend

        return FanBackend(**options)
    raise ValueError(f"unknown landmark backend {name!r}; valid: {', '.join(BACKENDS)}")
