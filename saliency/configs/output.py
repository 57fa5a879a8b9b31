"""Settings of the output stages: publication figures and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from saliency.settings import setting

FIGURE_FORMATS = ("pdf", "png")
WIDTH_NAMES = ("single", "double")  # 3.5 in and 7 in (viz.style.WIDTHS)
MIN_N = 5  # panels resting on fewer images are greyed


@dataclass
class FiguresConfig:
    run: Path = setting(help="the run folder", context=True)
    formats: tuple[str, ...] = setting(
        FIGURE_FORMATS, help="file formats, repeatable or comma separated",
        choices=FIGURE_FORMATS, aliases=("--format",),
    )  # fmt: skip
    dpi: int = setting(300, help="resolution of the PNGs", minimum=1)
    width: str = setting(
        "double",
        help="one-column (3.5 in) or two-column (7 in) paper width; the face and histogram "
        "grids always take two columns",
        choices=WIDTH_NAMES,
    )
    min_n: int = setting(MIN_N, help="grey out panels with fewer images")
    split: str = setting("test", help="the explained and evaluated data split")

    def __post_init__(self) -> None:
        self.formats = tuple(self.formats)
        bad = [f for f in self.formats if f not in FIGURE_FORMATS]
        if bad or not self.formats:
            raise ValueError(f"unknown format(s) {bad}; valid: {', '.join(FIGURE_FORMATS)}")
        if self.width not in WIDTH_NAMES:
            raise ValueError(f"unknown width {self.width!r}; valid: {', '.join(WIDTH_NAMES)}")

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


@dataclass
class ReportConfig:
    run: Path = setting(help="the run folder", context=True)
