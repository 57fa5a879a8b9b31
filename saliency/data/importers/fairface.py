"""``fairface``: ``fairface_label_train.csv`` / ``fairface_label_val.csv`` beside the images.

Columns ``file,age,gender,race,service_test``; ``file`` is relative to SRC (``train/1.jpg``).
Races become group names without spaces (``East Asian`` -> ``East_Asian``), so cells read
``East_Asian_F``. FairFace's val file becomes split ``val``; ``--split-map val=test`` makes
it the test split, and ``--val-fraction`` then carves a validation split out of train.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from saliency.data.importers.common import ImportOptions, Skips, apply_map

FILES = {"train": "fairface_label_train.csv", "val": "fairface_label_val.csv"}
RACES = {
    r: r.replace(" ", "_")
    for r in (
        "White",
        "Black",
        "Latino_Hispanic",
        "East Asian",
        "Southeast Asian",
        "Indian",
        "Middle Eastern",
    )
}
GENDERS = {"Male": "male", "Female": "female"}


def load(src: Path, opts: ImportOptions, skips: Skips) -> pd.DataFrame:
    frames = []
    for split, name in FILES.items():
        path = src / name
        if not path.is_file():
            continue
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        missing = {"file", "gender", "race"} - set(table.columns)
        if missing:
            raise ValueError(f"{name} lacks columns {sorted(missing)}")
        table["split"] = split
        frames.append(table)
    if not frames:
        raise FileNotFoundError(f"neither {FILES['train']} nor {FILES['val']} found in {src}")
    df = pd.concat(frames, ignore_index=True)
    root = opts.images or src
    df.insert(0, "path", [str((root / f.strip()).resolve()) for f in df.pop("file")])
    df = df.rename(columns={"gender": "label", "race": "group"})
    df = apply_map(df, "label", opts.label_map or GENDERS, "gender", skips)
    return apply_map(df, "group", opts.group_map or RACES, "race", skips)
