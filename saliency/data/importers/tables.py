"""Table importers: ``csv`` (any columns, mapped by options) and ``morph`` (MORPH-II CSV)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from saliency.data.importers.common import ImportOptions, Skips, apply_map

MORPH_DEFAULTS = {
    "path_col": "photo",
    "label_col": "gender",
    "group_col": "race",
    "label_map": {"M": "male", "F": "female"},
    # The reference study's groups: Black -> AA, White -> C; other codes kept as they are.
    "group_map": {"B": "AA", "W": "C", "H": "H", "A": "A", "O": "O"},
}
CSV_DEFAULTS = {
    "path_col": "path",
    "label_col": "label",
    "group_col": "group",
    "split_col": "split",
}


def _csv_file(src: Path) -> Path:
    if src.is_file():
        return src
    if src.is_dir():
        found = sorted(src.glob("*.csv"))
        if len(found) == 1:
            return found[0]
        raise ValueError(f"{src} holds {len(found)} CSV files; pass the CSV file itself as SRC")
    raise FileNotFoundError(f"{src} does not exist")


def _option(opts: ImportOptions, defaults: dict, name: str):
    value = getattr(opts, name)
    return defaults.get(name) if value is None else value


def load_table(src: Path, opts: ImportOptions, skips: Skips, defaults: dict) -> pd.DataFrame:
    """Read a CSV and rename its mapped columns to ``path``, ``label``, ``group``, ``split``."""
    csv = _csv_file(src)
    table = pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True)
    table.columns = [c.strip() for c in table.columns]
    root = opts.images or csv.parent
    cols = {k: _option(opts, defaults, f"{k}_col") for k in ("path", "label", "group", "split")}
    for key in ("path", "label"):
        if cols[key] not in table.columns:
            raise ValueError(
                f"{csv.name} has no column {cols[key]!r} for the {key}; columns are "
                f"{list(table.columns)} (choose one with --{key}-col)"
            )
    optional = {k: c for k, c in cols.items() if k in ("group", "split") and c in table.columns}
    if opts.group_col and "group" not in optional:
        raise ValueError(f"{csv.name} has no column {opts.group_col!r} (--group-col)")
    if opts.split_col and "split" not in optional:
        raise ValueError(f"{csv.name} has no column {opts.split_col!r} (--split-col)")
    df = table.drop(
        columns=[
            c
            for c in ("path", "label", "group", "split")
            if c in table.columns and c not in cols.values()
        ]
    )
    df = df.rename(
        columns={
            cols["path"]: "path",
            cols["label"]: "label",
            **{c: k for k, c in optional.items()},
        }
    )
    df["path"] = [str((root / p.strip()).resolve()) if p.strip() else "" for p in df["path"]]
    df = apply_map(df, "label", _option(opts, defaults, "label_map"), "label", skips)
    if "group" in df.columns:
        df = apply_map(df, "group", _option(opts, defaults, "group_map"), "group", skips)
    return df


def load_csv(src: Path, opts: ImportOptions, skips: Skips) -> pd.DataFrame:
    return load_table(src, opts, skips, CSV_DEFAULTS)


def load_morph(src: Path, opts: ImportOptions, skips: Skips) -> pd.DataFrame:
    return load_table(src, opts, skips, MORPH_DEFAULTS)
