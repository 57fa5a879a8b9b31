"""The attribution methods' names and options, importable without torch (for the CLI's help).

The modules that implement them import these tuples, so there is one list of each.
"""

from __future__ import annotations

GRADCAM_FAMILY: tuple[str, ...] = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam")
LIBRARY_METHODS: tuple[str, ...] = ("scorecam", "eigencam")  # through pytorch-grad-cam
GRID_METHODS: tuple[str, ...] = ("cam", *GRADCAM_FAMILY)  # on the last block's grid
METHODS: tuple[str, ...] = ("cam", *GRADCAM_FAMILY, "ig", *LIBRARY_METHODS)
IG_METHODS: tuple[str, ...] = (
    "gausslegendre",
    "riemann_trapezoid",
    "riemann_left",
    "riemann_right",
    "riemann_middle",
)
BASELINES: tuple[str, ...] = ("black", "blur", "mean", "noise")
RULES: tuple[str, ...] = ("receptive-field", "half-pixel")  # grid-to-pixel placement


def available() -> tuple[str, ...]:
    """The built-in methods and those other packages offer through the ``saliency.methods``
    entry-point group (by name, without importing them: the command line lists them)."""
    import sys
    from importlib.metadata import entry_points

    key = tuple(sys.path)
    if key not in _OFFERED:  # scanning the installed packages takes ~5 ms
        eps = entry_points(group="saliency.methods")
        _OFFERED[key] = tuple(ep.name for ep in eps if ep.name not in METHODS)
    return METHODS + _OFFERED[key]


_OFFERED: dict[tuple[str, ...], tuple[str, ...]] = {}
