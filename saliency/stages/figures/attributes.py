"""Publication figure of image attributes: their distributions per cell, accuracy per
attribute bin, and each cell's gap with and without them.

Read from ``RUN/attributes/`` only (``saliency attributes``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from saliency.rundir import attributes_dir
from saliency.stages.figures.spec import FigureSpec
from saliency.viz.attributes import attributes_figure
from saliency.viz.style import paper_figure

TABLES = ("per_image", "summary", "bins", "gaps")


def attributes(run: Path, width: float) -> FigureSpec | str:
    """The attributes figure (``attributes.pdf``/``.png``), or why it cannot be drawn."""
    folder = attributes_dir(run)
    files = {name: folder / f"{name}.csv" for name in TABLES}
    if not all(f.is_file() for f in files.values()):
        return f"no image attributes: run `saliency attributes --run {run}`"
    per, summary, bins, gaps = (pd.read_csv(files[n], keep_default_na=False) for n in TABLES)
    if not len(per):
        return "no image was measured (see RUN/attributes/skipped.csv)"
    fig = paper_figure(width, 4.6 + 0.25 * per["cell"].nunique())
    attributes_figure(fig, per, summary, bins, gaps)
    fig.suptitle("Image attributes per cell and their relation to errors")
    penalty = {"firth": "Firth", "ridge": "ridge"}.get(
        str(gaps["penalty"].iloc[0]) if len(gaps) else "", "penalized"
    )
    caption = (
        f"Image attributes of the {len(per)} evaluated images, one colour per cell. Top: each "
        "attribute's distribution (violins; black, the mean with its 95% bootstrap interval): "
        "skin brightness is the skin pixels' mean CIE L*, hair over the face the share of the "
        "face oval and forehead (built from the face parts, the forehead reaching 0.75 "
        "eye-to-chin depths above the eye line) labelled hair, visible face area the face "
        "parts' share of the image. Middle: accuracy in each attribute's quantile bins, with "
        "95% Wilson intervals. Bottom: each cell's accuracy minus the rest's, in percentage "
        "points: raw (Newcombe interval); as the cell's average marginal effect (AME) in a "
        f"{penalty}-penalized logistic regression of correctness on the cells alone and on the "
        "cells and the standardized attributes (95% intervals from a bootstrap within cells "
        "refitting both; right, the change, with-attributes minus cell-only, whose interval "
        "excluding zero says the attributes account for part of the gap); and on a subset "
        "matched on the attributes' quantile bins (Newcombe interval)."
    )
    return FigureSpec("attributes", fig, caption, len(per))
