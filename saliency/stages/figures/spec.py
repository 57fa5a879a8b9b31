"""What a publication-figure builder returns: the figure, its file stem and its caption."""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.figure import Figure


@dataclass
class FigureSpec:
    name: str  # file stem under RUN/figures/
    figure: Figure
    caption: str  # one line: what it shows and how many images it rests on
    n: int  # images the figure rests on
