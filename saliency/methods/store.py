"""Reading stored maps: ``RUN/saliency/<split>/<method>/`` (maps.npy, index.csv, meta.json).

The explain stage writes them (:mod:`saliency.stages.explain`); every analysis reads them
through here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.rundir import saliency_dir


def read_index(folder: str | Path) -> tuple[pd.DataFrame, dict]:
    """One method's index.csv and meta.json (without opening the maps)."""
    folder = Path(folder)
    if not (folder / "meta.json").is_file():
        raise FileNotFoundError(f"no maps in {folder}; run `saliency explain` first")
    index = pd.read_csv(folder / "index.csv", keep_default_na=False)
    return index, json.loads((folder / "meta.json").read_text())


def read_maps(folder: str | Path) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Open one method's stored maps (memory-mapped, read-only), its index and meta."""
    index, meta = read_index(folder)
    return np.load(Path(folder) / "maps.npy", mmap_mode="r"), index, meta


def absolute_paths(index: pd.DataFrame, meta: dict) -> list[str]:
    """The images of an index as resolved absolute paths (index paths are relative to the
    manifest the maps were made from), so maps of different runs pair up by image."""
    root = Path(meta["manifest"]).resolve().parent
    return [str((root / p).resolve()) for p in index["path"]]


def explained_methods(run: str | Path, split: str, asked: list[str] | None) -> list[str]:
    """The methods with stored maps under ``RUN/saliency/<split>``, or ``asked`` after
    checking each is there (an unknown one raises ``ValueError`` listing the valid ones)."""
    base = saliency_dir(run, split)
    present = sorted(p.parent.name for p in base.glob("*/meta.json"))
    if not present:
        raise FileNotFoundError(
            f"no maps under {base}; run `saliency explain --run {run} --split {split}` first"
        )
    for m in asked or []:
        if m not in present:
            raise ValueError(f"unknown method {m!r} for {base}; valid: {', '.join(present)}")
    return asked or present
