"""Preview sheets of a manifest with region masks: faces, region overlays, landmarks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from saliency.data.imageio import read_label_map, read_rgb
from saliency.data.manifest import read_manifest
from saliency.data.synth.generate import MANIFEST
from saliency.viz.figures import region_sheet
from saliency.viz.style import save_figure


def manifest_preview(manifest: str | os.PathLike, out: str | os.PathLike, n: int = 16) -> Path:
    """A contact sheet of up to ``n`` faces of a manifest with a ``mask`` column, balanced by
    cell (subgroup and class); captions name the cell and any planted cue's class."""
    m = read_manifest(manifest)
    df = m.df
    per_cell = max(1, n // max(1, df.groupby(["group", "label"]).ngroups))
    picks = df.groupby(["group", "label"], sort=True).head(per_cell)
    picks = picks.sort_values(["group", "label"], kind="stable").head(n)
    lms = m.landmarks()[picks.index.to_numpy()]
    images = [read_rgb(m.abspath(p)) for p in picks["path"]]
    labels = [read_label_map(m.abspath(p)) for p in picks["mask"]]
    cues = picks["cue_class"] if "cue_class" in picks else picks["label"]
    titles = [
        f"{g} {lab} (cue {c})".strip() if c != lab else f"{g} {lab}".strip()
        for g, lab, c in zip(picks["group"], picks["label"], cues, strict=True)
    ]
    points = [None if not np.isfinite(p).all() else p for p in np.asarray(lms)]
    return save_figure(region_sheet(images, labels, points, titles), out, dpi=110)


def synth_preview(dataset: str | os.PathLike, out: str | os.PathLike, n: int = 16) -> Path:
    """The synthetic data set's preview sheet."""
    return manifest_preview(Path(dataset) / MANIFEST, out, n)
