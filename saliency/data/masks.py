"""Region masks made after the model: a manifest's ``mask`` column matched to images by path.

``saliency regions`` writes a manifest with a ``mask`` column for images a model already
classifies; ``explain``, ``share`` and ``ablate`` take it with ``--manifest`` and match its
rows to the run's images by resolved absolute path, so no retraining is needed to attach
masks. An image of the run that the manifest lacks is one clear error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from saliency.data.manifest import read_manifest


def masks_by_image(manifest: str | os.PathLike) -> dict[str, str]:
    """Resolved absolute image path -> absolute mask path (``""``: the row has no mask)."""
    m = read_manifest(manifest)
    if "mask" not in m.df.columns:
        raise ValueError(
            f"{manifest} has no 'mask' column: run `saliency regions` on it and pass the "
            "manifest it writes"
        )
    masks = m.df["mask"].fillna("").astype(str)
    return {
        str(m.abspath(p).resolve()): str(m.abspath(k)) if k else ""
        for p, k in zip(m.df["path"].astype(str), masks, strict=True)
    }


def match_masks(images: list[str], manifest: str | os.PathLike) -> list[str]:
    """Absolute mask paths for ``images`` (absolute), from ``manifest``; every image must be
    there."""
    of = masks_by_image(manifest)
    keys = [str(Path(p).resolve()) for p in images]
    missing = [p for p, k in zip(images, keys, strict=True) if k not in of]
    if missing:
        raise ValueError(
            f"{len(missing)} of the {len(images)} images are not in {manifest} (matched by "
            f"path), e.g. {missing[0]}: pass the manifest `saliency regions` wrote for them"
        )
    return [of[k] for k in keys]


def with_masks(rows: pd.DataFrame, manifest: str | os.PathLike | None) -> pd.DataFrame:
    """``rows`` (absolute ``path``) with the ``mask`` column taken from ``manifest``
    (unchanged when it is None)."""
    if manifest is None:
        return rows
    rows = rows.copy()
    rows["mask"] = match_masks(rows["path"].tolist(), manifest)
    return rows
