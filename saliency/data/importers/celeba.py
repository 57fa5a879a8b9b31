"""``celeba``: CelebA's aligned-and-cropped release (text tables or the CSV mirror).

Gender from the ``Male`` attribute (1 male, -1 female); split from the evaluation partition
(0 train, 1 val, 2 test); the 5-point aligned landmarks and the 40 attributes kept as columns.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from saliency.data.importers.common import ImportOptions, Skips, apply_map

PARTITIONS = {"0": "train", "1": "val", "2": "test"}
FIVE_POINTS = [
    "lefteye_x",
    "lefteye_y",
    "righteye_x",
    "righteye_y",
    "nose_x",
    "nose_y",
    "leftmouth_x",
    "leftmouth_y",
    "rightmouth_x",
    "rightmouth_y",
]


def _find(src: Path, stem: str, required: bool) -> Path | None:
    for name in (f"{stem}.txt", f"{stem}.csv"):
        for p in (src / name, src / "Anno" / name, src / "Eval" / name):
            if p.is_file():
                return p
    if required:
        raise FileNotFoundError(f"CelebA table {stem}.txt (or .csv) not found under {src}")
    return None


def read_celeba_table(path: Path, skips: Skips) -> pd.DataFrame:
    """A CelebA table indexed by image file name, every value a string.

    Text form: optional count line, a header line of column names, then ``name v1 v2 ...``
    separated by runs of spaces. CSV form: ``image_id`` plus the columns.
    """
    if path.suffix == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        return df.set_index(df.columns[0])
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if lines and len(lines[0]) == 1 and lines[0][0].isdigit():
        lines = lines[1:]
    header, body = lines[0], lines[1:]
    if header and header[0].endswith((".jpg", ".png")):  # partition file: no header
        header, body = ["partition"], lines
    rows, index = [], []
    for parts in body:
        if len(parts) != len(header) + 1:
            skips.add(
                parts[0] if parts else "?",
                f"malformed line in {path.name}: {len(parts) - 1} values, expected {len(header)}",
            )
            continue
        index.append(parts[0])
        rows.append(parts[1:])
    return pd.DataFrame(rows, index=pd.Index(index, name="image_id"), columns=header)


def _image_folder(src: Path, first: str) -> Path:
    for folder in (src / "img_align_celeba" / "img_align_celeba", src / "img_align_celeba", src):
        if (folder / first).is_file():
            return folder
    return src / "img_align_celeba"


def load(src: Path, opts: ImportOptions, skips: Skips) -> pd.DataFrame:
    attrs = read_celeba_table(_find(src, "list_attr_celeba", True), skips)
    if "Male" not in attrs.columns:
        raise ValueError("list_attr_celeba has no 'Male' column; is this CelebA's attribute file?")
    df = attrs.copy()
    part_file = _find(src, "list_eval_partition", False)
    if part_file is not None:
        parts = read_celeba_table(part_file, skips)
        df["split"] = parts.iloc[:, 0].map(PARTITIONS).reindex(df.index).fillna("")
    lm_file = _find(src, "list_landmarks_align_celeba", False)
    if lm_file is not None:
        lms = read_celeba_table(lm_file, skips)
        lms.columns = [c.strip() for c in lms.columns]
        df = df.join(lms[[c for c in FIVE_POINTS if c in lms.columns]], how="left")
    folder = opts.images or _image_folder(src, df.index[0] if len(df) else "")
    df.insert(0, "path", [str((folder / name).resolve()) for name in df.index])
    df.insert(1, "label", df["Male"].str.strip())
    label_map = opts.label_map or {"1": "male", "-1": "female"}
    df = apply_map(df.reset_index(drop=True), "label", label_map, "Male attribute", skips)
    if opts.group_col:
        if opts.group_col not in df.columns:
            raise ValueError(f"--group-col {opts.group_col!r} is not a CelebA attribute")
        df["group"] = df[opts.group_col]
        df = apply_map(df, "group", opts.group_map, "group", skips)
    return df
