"""A run's delete-mode ablations, as the agreement and validate stages read them:
``RUN/ablation/<region>_<fill>_delete/per_image.csv`` (written by ``saliency ablate``)."""

from __future__ import annotations

import os

import pandas as pd

from saliency.data.regions import REGIONS
from saliency.rundir import ablation_dir, ablation_result_dir


def ablation_drops(
    run: str | os.PathLike, fill: str, regions: tuple[str, ...] | list[str] = REGIONS
) -> pd.DataFrame | None:
    """Per-image drops from ``RUN/ablation/<region>_<fill>_delete/per_image.csv`` for every
    region present: a frame with ``path`` and ``drop_<region>`` (the true class's probability
    before minus after, 0-1; NaN where the region had zero area); ``None`` when fewer than
    three regions were ablated with that fill."""
    frames = []
    for r in regions:
        f = ablation_result_dir(run, r, fill, "delete") / "per_image.csv"
        if f.is_file():
            t = pd.read_csv(
                f,
                keep_default_na=False,
                usecols=["path", "region_area", "prob_before", "prob_after"],
            )
            drop = (t["prob_before"] - t["prob_after"]).where(t["region_area"] > 0)
            frames.append(pd.DataFrame({"path": t["path"], f"drop_{r}": drop}).set_index("path"))
    if len(frames) < 3:
        return None
    return pd.concat(frames, axis=1, join="inner").reset_index()


def ablation_fills(run: str | os.PathLike) -> list[str]:
    """Fills with delete-mode ablations under ``RUN/ablation`` (blur first)."""
    found = {p.name.split("_")[1] for p in ablation_dir(run).glob("*_*_delete")}
    return sorted(found, key=lambda f: (f != "blur", f))
