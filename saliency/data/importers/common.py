"""What every importer shares: options, skipped rows, and turning rows into a manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.data.import_options import ImportOptions, parse_map
from saliency.data.manifest import SPLITS, normalize_frame, relative_path
from saliency.data.recordio import record_file, record_path, split_record_path

__all__ = ["ImportOptions", "parse_map"]


@dataclass
class ImportResult:
    """Rows that made it (manifest form) and rows that did not, each with a reason."""

    df: pd.DataFrame
    skipped: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["source", "reason"])
    )


class Skips:
    """Collects skipped rows: never drop a row without saying why."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def add(self, source: str | os.PathLike, reason: str) -> None:
        self.rows.append((str(source), reason))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["source", "reason"])


def apply_map(
    df: pd.DataFrame, col: str, mapping: dict[str, str] | None, what: str, skips: Skips
) -> pd.DataFrame:
    """Map ``df[col]`` through ``mapping``; rows with unmapped values are skipped."""
    if mapping is None:
        return df
    values = df[col].astype(str).str.strip()
    known = values.isin(list(mapping))
    for i in np.flatnonzero(~known.to_numpy()):
        skips.add(
            df["path"].iloc[i],
            f"{what} {values.iloc[i]!r} not in the {what} map ({', '.join(mapping)})",
        )
    df = df[known.to_numpy()].copy()
    df[col] = values[known].map(mapping)
    return df


@lru_cache(maxsize=64)
def _is_file(path: str) -> bool:
    return Path(path).is_file()


def _image_exists(path: str) -> bool:
    rec = record_file(path)  # millions of rows in one .rec: one stat for all
    return Path(path).is_file() if rec is None else _is_file(str(rec))


def drop_missing_files(df: pd.DataFrame, skips: Skips) -> pd.DataFrame:
    """Skip rows whose image file (or, for a ``.rec#offset`` path, ``.rec`` file) is missing."""
    exists = np.array([_image_exists(p) for p in df["path"]], dtype=bool)
    for p in df.loc[~exists, "path"]:
        skips.add(p, "image file not found")
    return df[exists]


def drop_empty(df: pd.DataFrame, col: str, what: str, skips: Skips) -> pd.DataFrame:
    empty = df[col].fillna("").astype(str).str.strip() == ""
    for p in df.loc[empty, "path"]:
        skips.add(p, f"empty {what}")
    return df[~empty.to_numpy()]


def carve_validation(df: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """Move a seeded ``fraction`` of each (group, label) cell of ``train`` into ``val``."""
    if fraction <= 0:
        return df
    if not 0 < fraction < 1:
        raise ValueError("--val-fraction must lie in (0, 1)")
    df = df.copy()
    rng = np.random.default_rng(seed)
    train = df[df["split"] == "train"]
    for _, cell in train.groupby(["group", "label"], sort=True):
        k = int(round(fraction * len(cell)))
        pick = rng.choice(cell.index.to_numpy(), size=k, replace=False)
        df.loc[pick, "split"] = "val"
    return df


def sample_cells(df: pd.DataFrame, per_cell: int | None, seed: int) -> pd.DataFrame:
    """At most ``per_cell`` rows of each (split, group, label) cell, a seeded sample in the
    rows' order (all rows when ``per_cell`` is None or the cell is smaller)."""
    if per_cell is None:
        return df
    rng = np.random.default_rng([seed, 1])  # apart from the carve-out's draws
    keys = [c for c in ("split", "group", "label") if c in df.columns]
    keep = []
    for _, cell in df.groupby(keys, sort=True, dropna=False):
        idx = cell.index.to_numpy()
        keep.append(idx if len(idx) <= per_cell else rng.choice(idx, per_cell, replace=False))
    return df[df.index.isin(np.concatenate(keep))] if keep else df


def _relative_paths(paths: pd.Series, folder: Path) -> list[str]:
    """:func:`relative_path` of each path; a ``.rec`` file's millions of records cost one."""
    recs: dict[str, str] = {}
    out = []
    for p in paths:
        parts = split_record_path(p)
        if parts is None:
            out.append(relative_path(p, folder))
            continue
        rec = str(parts[0])
        if rec not in recs:
            recs[rec] = relative_path(rec, folder)
        out.append(record_path(recs[rec], parts[1]))
    return out


def finalize(
    df: pd.DataFrame, out: str | os.PathLike, opts: ImportOptions, skips: Skips
) -> ImportResult:
    """Absolute ``path`` rows -> manifest rows relative to the manifest written at ``out``."""
    df = drop_empty(df, "path", "path", skips)
    df = drop_empty(df, "label", "label", skips)
    df = drop_missing_files(df, skips)
    if opts.split_map:
        df = df.copy()
        df["split"] = df["split"].map(lambda s: opts.split_map.get(s, s))
    if "split" in df.columns:
        bad = ~df["split"].fillna("").isin((*SPLITS, ""))
        for p, s in zip(df.loc[bad, "path"], df.loc[bad, "split"], strict=True):
            skips.add(p, f"split {s!r} is not one of {', '.join(SPLITS)} (use --split-map)")
        df = df[~bad.to_numpy()]
    df = normalize_frame(df)
    df = carve_validation(df, opts.val_fraction, opts.seed)
    df = sample_cells(df, opts.per_cell, opts.seed)
    folder = Path(out).resolve().parent
    df["path"] = _relative_paths(df["path"], folder)
    return ImportResult(df.reset_index(drop=True), skips.frame())
