"""The synthetic data set's preview sheet (faces, region overlays, landmarks)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from saliency.data.imageio import read_label_map, read_rgb
from saliency.data.manifest import read_manifest
from saliency.data.synth.generate import MANIFEST
from saliency.viz.regions import region_sheet
from saliency.viz.style import save_figure


def synth_preview(dataset: str | os.PathLike, out: str | os.PathLike, n: int = 16) -> Path:
    """Write a contact sheet of the first ``n`` faces of a synthetic data set, balanced by cell."""
    m = read_manifest(Path(dataset) / MANIFEST)
    df = m.df
    per_cell = max(1, n // max(1, df.groupby(["group", "label"]).ngroups))
    picks = df.groupby(["group", "label"], sort=True).head(per_cell)
    picks = picks.sort_values(["group", "label"], kind="stable").head(n)
    lms = m.landmarks()[picks.index.to_numpy()]
    images = [read_rgb(m.abspath(p)) for p in picks["path"]]
    labels = [read_label_map(m.abspath(p)) for p in picks["mask"]]
    titles = [
        f"{g} {lab} (cue {c})" if c != lab else f"{g} {lab}"
        for g, lab, c in zip(picks["group"], picks["label"], picks["cue_class"], strict=True)
    ]
    fig = region_sheet(images, labels, list(np.asarray(lms)), titles)
    return save_figure(fig, out, dpi=110)
