"""A model's input size: one side for a square input, or height and width.

A size is kept as an ``int`` when square (128: today's files and flags, unchanged) and as a
``(height, width)`` tuple otherwise: ``--size 218x178`` is CelebA's native crop, 218 high and
178 wide (height first, as in a tensor's ``[..., H, W]``). TOML takes ``size = 218`` or
``size = [218, 178]``; ``config.json`` and checkpoints store the same two forms.

Torch-free and import-light: the command line parses ``--size`` with :func:`parse_size`.
"""

from __future__ import annotations

from typing import Any

InputSize = int | tuple[int, int]


def as_size(value: Any, name: str = "size") -> InputSize:
    """A size from a flag's text, TOML or JSON (``128``, ``"218x178"``, ``[218, 178]``) ->
    ``int`` when square, else ``(height, width)``; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, str):
        return parse_size(value, name)
    if isinstance(value, list | tuple):
        if len(value) != 2 or not all(_whole(v) for v in value):
            raise ValueError(f"{name} must be one side or [height, width] in px, not {value!r}")
        h, w = int(value[0]), int(value[1])
    elif _whole(value):
        h = w = int(value)
    else:
        raise ValueError(f"{name} must be one side or [height, width] in px, not {value!r}")
    if h < 1 or w < 1:
        raise ValueError(f"{name} must be positive, not {value!r}")
    return h if h == w else (h, w)


def parse_size(text: str, name: str = "size") -> InputSize:
    """``"128"`` -> 128; ``"218x178"`` (height x width) -> ``(218, 178)``; ``"96x96"`` -> 96."""
    parts = text.strip().lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(
            f"{text!r} is not a size: give one side (128) or HEIGHTxWIDTH (218x178) in px"
        ) from None
    if len(values) not in (1, 2):
        raise ValueError(f"{text!r} is not a size: give one side (128) or HEIGHTxWIDTH (218x178)")
    return as_size(values[0] if len(values) == 1 else values, name)


def hw(size: InputSize) -> tuple[int, int]:
    """``(height, width)`` in px of a size (an ``int`` is square)."""
    if isinstance(size, tuple | list):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def size_text(size: InputSize) -> str:
    """``"128"`` for a square size, ``"218x178"`` (height x width) otherwise."""
    h, w = hw(size)
    return str(h) if h == w else f"{h}x{w}"


def plain_size(size: InputSize) -> int | list[int]:
    """A size as JSON/TOML data: ``128`` or ``[218, 178]``."""
    h, w = hw(size)
    return h if h == w else [h, w]


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
