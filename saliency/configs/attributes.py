"""Settings of the attributes stage: image attributes and their relation to errors per cell."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from saliency.analysis.names import PENALTIES
from saliency.settings import setting


@dataclass
class AttributesConfig:
    run: Path = setting(help="the run folder", context=True)
    split: str = setting(
        "test", help="the evaluation to read (RUN/eval/<split>/: a split or a named set)"
    )
    manifest: str | None = setting(
        None,
        help="region masks for the run's images (e.g. the manifest `saliency regions` wrote), "
        "matched by path (default: the evaluated manifest's mask column)",
    )
    bins: int = setting(4, help="quantile bins of each attribute for accuracy per bin", minimum=1)
    match_bins: int = setting(
        3, help="quantile bins of each attribute whose combinations the matched subset is "
        "balanced on", minimum=1,
    )  # fmt: skip
    penalty: str = setting(
        "firth",
        help="penalty of the logistic regression of correctness on cell and attributes: firth "
        "(bias-reducing; finite when a cell is all right) or ridge",
        choices=PENALTIES,
    )
    ridge: float = setting(
        1.0, help="ridge strength on the standardized coefficients (penalty ridge)", minimum=0
    )
    bootstrap: int = setting(2000, help="resamples per interval", minimum=1)
    seed: int = setting(0, help="bootstrap and matching seed")
    workers: int = setting(2, help="worker processes", context=True)

    def __post_init__(self) -> None:
        if self.penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {self.penalty!r}; valid: {', '.join(PENALTIES)}")

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
