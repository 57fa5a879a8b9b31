"""The manifest: one CSV that every stage reads (format in DESIGN.md).

Columns: ``path`` and ``label`` (required), ``group`` and ``split`` (optional), the 68
landmarks ``x0,y0,...,x67,y67`` in pixels of the stored image (optional, all or none), and
any other columns, which are kept as metadata.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.atomic import atomic_write_text

REQUIRED = ("path", "label")
SPLITS = ("train", "val", "test")
N_LANDMARKS = 68
LANDMARK_COLUMNS: tuple[str, ...] = tuple(c for i in range(N_LANDMARKS) for c in (f"x{i}", f"y{i}"))
CORE_COLUMNS = ("path", "label", "group", "split")


class ManifestError(ValueError):
    """A manifest that cannot be used at all (missing columns, no rows, bad class set)."""


@dataclass
class Manifest:
    """A loaded manifest.

    Attributes:
        df: one row per image; ``path``, ``label``, ``group`` and ``split`` are strings
            (``group``/``split`` empty when absent), landmark columns float (NaN if missing).
        root: folder that relative paths are resolved against (the manifest's folder).
        classes: class names in their canonical order (alphabetical unless given).
    """

    df: pd.DataFrame
    root: Path
    classes: list[str]

    def __len__(self) -> int:
        return len(self.df)

    @property
    def has_landmarks(self) -> bool:
        return all(c in self.df.columns for c in LANDMARK_COLUMNS)

    def abspath(self, path: str) -> Path:
        """Resolve one ``path`` entry against the manifest's folder."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def abspaths(self) -> list[Path]:
        return [self.abspath(p) for p in self.df["path"]]

    def landmarks(self) -> np.ndarray:
        """Landmarks as float32 ``[N, 68, 2]`` in pixels (x, y); NaN where missing."""
        if not self.has_landmarks:
            return np.full((len(self.df), N_LANDMARKS, 2), np.nan, dtype=np.float32)
        flat = self.df[list(LANDMARK_COLUMNS)].to_numpy(dtype=np.float32)
        return flat.reshape(len(self.df), N_LANDMARKS, 2)

    def label_index(self) -> np.ndarray:
        """Class index of each row, ``[N]`` int64, in the order of ``classes``."""
        lookup = {c: i for i, c in enumerate(self.classes)}
        return np.array(self.df["label"].map(lookup), dtype=np.int64)


def landmark_frame(points: np.ndarray) -> pd.DataFrame:
    """Turn ``[N, 68, 2]`` landmarks into the manifest's ``x0,y0,...`` columns."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (N_LANDMARKS, 2):
        raise ValueError(f"expected landmarks of shape [N, 68, 2], got {points.shape}")
    return pd.DataFrame(points.reshape(len(points), -1), columns=list(LANDMARK_COLUMNS))


def resolve_classes(labels: pd.Series, classes: list[str] | None = None) -> list[str]:
    """Class order: ``classes`` if given (every label must be in it), else alphabetical."""
    present = sorted(set(labels.astype(str)))
    if classes is None:
        return present
    unknown = [c for c in present if c not in classes]
    if unknown:
        raise ManifestError(
            f"labels {unknown} are not among the given classes {classes}; "
            "fix the labels or pass all classes with --classes"
        )
    return list(classes)


def normalize_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Put a raw frame into manifest form: string core columns, core columns first."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ManifestError(
            f"manifest lacks required column(s) {missing}; it needs at least 'path' and 'label'"
        )
    df = df.copy()
    for col in CORE_COLUMNS:
        if col not in df.columns:
            df[col] = ""
        df[col] = df[col].fillna("").astype(str).str.strip()
    present = [c for c in LANDMARK_COLUMNS if c in df.columns]
    if present and len(present) != len(LANDMARK_COLUMNS):
        absent = [c for c in LANDMARK_COLUMNS if c not in df.columns]
        raise ManifestError(
            f"manifest has {len(present)} of the 136 landmark columns (missing e.g. {absent[:4]}); "
            "give all of x0,y0,...,x67,y67 or none"
        )
    # columns already float (_read_csv's fast path, a frame of floats) are what to_numeric
    # would return; converting only the others saves 136 column assignments a manifest
    for col in [c for c in present if not pd.api.types.is_float_dtype(df[c])]:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    rest = [c for c in df.columns if c not in CORE_COLUMNS and c not in LANDMARK_COLUMNS]
    return df[list(CORE_COLUMNS) + rest + present].reset_index(drop=True)


def _read_csv(path: Path) -> pd.DataFrame:
    """The CSV as strings, except that a full set of landmark columns is parsed as float by
    the reader itself (0.06 s for 8k rows, against 0.44 s for strings then ``to_numeric``).
    A landmark cell the reader cannot parse sends the whole file through the string path,
    where :func:`normalize_frame` turns bad cells into NaN."""
    header = pd.read_csv(path, nrows=0, encoding="utf-8").columns
    if all(c in header for c in LANDMARK_COLUMNS):
        try:
            return pd.read_csv(
                path,
                dtype={c: (float if c in LANDMARK_COLUMNS else str) for c in header},
                keep_default_na=False,
                na_values={c: [""] for c in LANDMARK_COLUMNS},
                encoding="utf-8",
            )
        except ValueError:
            pass  # a cell that is not a number: parse it the slow, forgiving way
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def read_manifest(path: str | os.PathLike, classes: list[str] | None = None) -> Manifest:
    """Read and structurally validate a manifest CSV.

    Row-level problems (missing files, bad landmarks) are left to :mod:`saliency.data.check`;
    this raises :class:`ManifestError` only when the file cannot be used at all.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(
            f"manifest {path} does not exist; create one with `saliency data import`"
        )
    try:
        df = _read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest {path} is not a UTF-8 CSV with a header row: {exc}") from exc
    if len(df) == 0:
        raise ManifestError(f"manifest {path} has no rows")
    df = normalize_frame(df.replace("", np.nan))
    return Manifest(
        df=df, root=path.resolve().parent, classes=resolve_classes(df["label"], classes)
    )


def write_manifest(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a manifest atomically; returns the path written."""
    path = Path(path)
    df = normalize_frame(df)
    atomic_write_text(path, df.to_csv(index=False, lineterminator="\n", float_format="%.3f"))
    return path


def relative_path(image: str | os.PathLike, manifest_dir: str | os.PathLike) -> str:
    """Path of ``image`` as stored in a manifest written to ``manifest_dir``.

    Relative (with forward slashes) when the image lies under the same drive, else absolute.
    """
    image = Path(image).resolve()
    try:
        rel = os.path.relpath(image, Path(manifest_dir).resolve())
    except ValueError:  # different drives on Windows
        return image.as_posix()
    return Path(rel).as_posix()


def derived_name(row: int, path: str | os.PathLike, suffix: str = ".png") -> str:
    """File name for what a stage derives from manifest row ``row`` (an aligned image, a
    mask): ``<row>_<stem><suffix>``, unique by row, readable by stem, safe on every system."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem)[:60]
    return f"{row:06d}_{stem}{suffix}"
