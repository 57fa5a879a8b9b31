"""``imagefolder``: one folder per class, optionally inside split folders.

``SRC/female/*.jpg``, ``SRC/male/*.jpg``; or ``SRC/Training/female/...``,
``SRC/Validation/male/...`` (the Kaggle gender data set) and other split folder names.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from saliency.data.imageio import is_image_name
from saliency.data.importers.common import ImportOptions, Skips

SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


def _class_folder_rows(folder: Path, split: str, skips: Skips) -> list[dict]:
    rows = []
    for f in sorted(folder.iterdir()):
        if f.is_file():
            skips.add(f, "file outside any class folder")
            continue
        for p in sorted(f.rglob("*")):
            if not p.is_file():
                continue
            if not is_image_name(p):
                skips.add(p, f"not an image file name ({p.suffix or 'no suffix'})")
                continue
            rows.append({"path": str(p.resolve()), "label": f.name, "split": split})
    return rows


def load(src: Path, opts: ImportOptions, skips: Skips) -> pd.DataFrame:
    if not src.is_dir():
        raise NotADirectoryError(f"{src} is not a folder; imagefolder expects SRC/<class>/images")
    subdirs = [d for d in src.iterdir() if d.is_dir()]
    if not subdirs:
        raise ValueError(f"{src} has no class folders; expected SRC/<class>/images")
    if all(d.name.lower() in SPLIT_FOLDERS for d in subdirs):
        rows = []
        for f in sorted(src.iterdir()):
            if f.is_dir():
                rows += _class_folder_rows(f, SPLIT_FOLDERS[f.name.lower()], skips)
            else:
                skips.add(f, "file outside any split/class folder")
    else:
        rows = _class_folder_rows(src, "", skips)
    return pd.DataFrame(rows, columns=["path", "label", "split"])
