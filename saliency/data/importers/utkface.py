"""``utkface``: file names ``[age]_[gender]_[race]_[date&time].jpg(.chip.jpg)``.

gender 0 male, 1 female; race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others. Names with a
missing or invalid field (a few exist in the public release) are skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from saliency.data.imageio import is_image_name
from saliency.data.importers.common import ImportOptions, Skips, apply_map

GENDERS = {"0": "male", "1": "female"}
RACES = {"0": "White", "1": "Black", "2": "Asian", "3": "Indian", "4": "Others"}


def parse_name(name: str) -> tuple[int, str, str] | str:
    """``(age, gender code, race code)`` from a UTKFace file name, or the reason it fails."""
    fields = name.split(".")[0].split("_")
    if len(fields) != 4:
        return f"file name has {len(fields)} fields, expected age_gender_race_datetime"
    age, gender, race, _ = fields
    if not age.isdigit():
        return f"age {age!r} is not a number"
    if gender not in GENDERS:
        return f"gender code {gender!r} is not 0 or 1"
    if race not in RACES:
        return f"race code {race!r} is not 0-4"
    return int(age), gender, race


def load(src: Path, opts: ImportOptions, skips: Skips) -> pd.DataFrame:
    if not src.is_dir():
        raise NotADirectoryError(f"{src} is not a folder of UTKFace images")
    rows = []
    for p in sorted(src.rglob("*")):
        if not p.is_file():
            continue
        if not is_image_name(p):
            skips.add(p, f"not an image file name ({p.suffix or 'no suffix'})")
            continue
        parsed = parse_name(p.name)
        if isinstance(parsed, str):
            skips.add(p, parsed)
            continue
        age, gender, race = parsed
        rows.append({"path": str(p.resolve()), "label": gender, "group": race, "age": age})
    df = pd.DataFrame(rows, columns=["path", "label", "group", "age"])
    df = apply_map(df, "label", opts.label_map or GENDERS, "gender code", skips)
    return apply_map(df, "group", opts.group_map or RACES, "race code", skips)
