"""Integrated Gradients' settings, importable without torch: the command line and the study
TOML are built from these fields (:mod:`saliency.settings`), and :mod:`saliency.methods.ig`
uses them (it re-exports :class:`IGConfig`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from saliency.methods.names import BASELINES, IG_METHODS
from saliency.settings import setting

__all__ = ["AUTO", "BASELINES", "FIRST_LEVEL", "IG_METHODS", "IGConfig", "steps_value"]

AUTO = "auto"  # n_steps: each image refined until complete (saliency.methods.ig_adaptive)
FIRST_LEVEL = 2  # auto: the first trapezoid level an image may stop at (2^2 + 1 = 5 points)


def steps_value(text: str) -> int | str:
    """``auto`` or a whole number of path points, from the command line."""
    if text == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither auto nor a number of path points") from None


@dataclass(frozen=True)
class IGConfig:
    """IG's settings. ``n_steps``: ``auto`` refines each image on nested trapezoid levels until
    its completeness error is within ``tolerance`` (or ``abs_floor`` score units) and its map
    has settled, at most ``cap`` path points; a number is that many nodes of ``method`` for
    every image (captum's rules; ``tolerance`` then only flags). ``baseline`` is the path's
    start (``seed`` draws the noise baseline). ``internal_batch`` bounds the path points per
    model call; it never changes a map."""

    n_steps: int | str = setting(
        AUTO,
        help="path points per image: auto (each image refined until complete, up to --ig-cap) "
        "or a fixed number of --ig-method nodes",
        aliases=("--ig-steps",),
        parse=steps_value,
        metavar="N|auto",
    )
    method: str = setting(
        "gausslegendre", help="quadrature rule of a fixed --ig-n-steps", choices=IG_METHODS
    )
    baseline: str = setting(
        "mean",
        help="the path's starting image: the training split's mean face by default (the "
        "best of the four on planted cues; README, 'The IG baseline')",
        choices=BASELINES,
    )
    seed: int = setting(0, help="seed of the noise baseline", aliases=("--seed",))
    internal_batch: int = setting(
        128, help="path points per model call (memory and speed; the maps are the same)"
    )
    tolerance: float = setting(
        0.05,
        help="relative completeness error |sum(map) - (S(x) - S(b))| / |S(x) - S(b)|: auto "
        "refines each image until below it, a fixed count flags the images above it",
    )
    abs_floor: float = setting(
        0.05,
        help="score units: a completeness error below this counts as complete, however small "
        "S(x) - S(b) is (0.05 of a logit moves a probability by at most 1.25 points)",
    )
    cap: int = setting(
        257,
        help="most path points per image with auto (levels of 2^L + 1 points); an image not "
        "complete by then is flagged (ig_capped in index.csv)",
    )

    def __post_init__(self) -> None:
        if self.method not in IG_METHODS:
            raise ValueError(f"unknown IG method {self.method!r}; valid: {', '.join(IG_METHODS)}")
        if self.baseline not in BASELINES:
            raise ValueError(f"unknown baseline {self.baseline!r}; valid: {', '.join(BASELINES)}")
        steps = self.n_steps
        if steps != AUTO and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"IG n_steps must be auto or a positive number, not {steps!r}")
        if not self.tolerance > 0 or self.abs_floor < 0:
            raise ValueError("IG tolerance must be above 0 and abs_floor at least 0")
        if self.cap < 2**FIRST_LEVEL + 1:
            raise ValueError(
                f"IG cap must allow at least {2**FIRST_LEVEL + 1} path points, not {self.cap}"
            )

    @property
    def adaptive(self) -> bool:
        """Whether each image is refined until complete (``n_steps`` is ``auto``)."""
        return self.n_steps == AUTO

    def to_dict(self) -> dict:
        return asdict(self)
