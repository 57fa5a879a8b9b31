"""Integrated Gradients' settings, importable without torch: the command line and the study
TOML are built from these fields (:mod:`saliency.settings`), and :mod:`saliency.methods.ig`
uses them (it re-exports :class:`IGConfig`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from saliency.methods.names import BASELINES, IG_METHODS
from saliency.settings import setting

__all__ = ["BASELINES", "IG_METHODS", "IGConfig"]


@dataclass(frozen=True)
class IGConfig:
    """IG's settings: ``n_steps`` quadrature points of ``method`` on the path from the
    ``baseline`` (``seed`` draws the noise baseline). ``internal_batch`` bounds the path points
    per model call and ``tolerance`` the completeness error above which rows are flagged;
    neither changes a map."""

    n_steps: int = setting(32, help="path points per image", aliases=("--ig-steps",))
    method: str = setting("gausslegendre", help="quadrature rule", choices=IG_METHODS)
    baseline: str = setting("black", help="the path's starting image", choices=BASELINES)
    seed: int = setting(0, help="seed of the noise baseline", aliases=("--seed",))
    internal_batch: int = setting(
        128, help="path points per model call (memory and speed; the maps are the same)"
    )
    tolerance: float = setting(
        0.05, help="warn when an image's relative completeness error exceeds this"
    )

    def __post_init__(self) -> None:
        if self.method not in IG_METHODS:
            raise ValueError(f"unknown IG method {self.method!r}; valid: {', '.join(IG_METHODS)}")
        if self.baseline not in BASELINES:
            raise ValueError(f"unknown baseline {self.baseline!r}; valid: {', '.join(BASELINES)}")

    def to_dict(self) -> dict:
        return asdict(self)
