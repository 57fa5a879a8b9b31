"""Where an ablation's per-image results live, and how runs over different groups combine.

``RUN/ablation/<region>_<fill>_<mode>/per_image.csv`` holds every image ablated so far
with the same settings (checkpoint, split, fill, mode, seed: ``settings.json``), so
``ablate --group AA_F`` after ``ablate --group C`` leaves both groups' rows, and summaries
cover all of them. Rows of an image ablated again replace its old rows; results made with
other settings are discarded, never mixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from saliency.atomic import atomic_write_json, atomic_write_text
from saliency.rundir import ablation_result_dir as result_dir

__all__ = ["merged", "result_dir", "store"]


def merged(folder: Path, new: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """``new`` per-image rows joined to the stored ones made with the same ``settings``."""
    old_file, key_file = folder / "per_image.csv", folder / "settings.json"
    if not (old_file.is_file() and key_file.is_file()):
        return new
    if json.loads(key_file.read_text()) != json.loads(json.dumps(settings)):
        return new
    old = pd.read_csv(old_file, keep_default_na=False)
    old = old[~old["path"].isin(set(new["path"]))]
    if len(old) == 0:
        return new
    old = old.astype({c: new[c].dtype for c in new.columns if c in old.columns and len(new)})
    return pd.concat([old, new], ignore_index=True)


def store(folder: Path, per: pd.DataFrame, settings: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "per_image.csv", per.to_csv(index=False))
    atomic_write_json(folder / "settings.json", settings)
