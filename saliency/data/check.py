"""Validate a manifest row by row: files, labels, duplicates, splits, landmarks.

``check_manifest`` never raises for a bad row; it returns every problem found with the row,
a kind and a message. Errors make ``saliency data check`` exit non-zero; warnings do not.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from saliency.data.imageio import ImageReadError, image_size, read_rgb
from saliency.data.manifest import SPLITS, Manifest, ManifestError, read_manifest

ERROR, WARNING = "error", "warning"
LANDMARK_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class Problem:
    """One finding. ``row`` is the 0-based data row (CSV line ``row + 2``), None for the file."""

    row: int | None
    path: str
    kind: str
    message: str
    severity: str = ERROR


@dataclass
class CheckResult:
    n_rows: int
    classes: list[str]
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def ok(self) -> bool:
        return not self.errors

    def frame(self) -> pd.DataFrame:
        cols = ["row", "line", "path", "severity", "kind", "message"]
        rows = [
            (p.row, None if p.row is None else p.row + 2, p.path, p.severity, p.kind, p.message)
            for p in self.problems
        ]
        return pd.DataFrame(rows, columns=cols)


def _label_problems(m: Manifest, classes: list[str] | None) -> list[Problem]:
    df = m.df
    out = [
        Problem(i, df.at[i, "path"], "label", "empty label")
        for i in np.flatnonzero((df["label"] == "").to_numpy())
    ]
    labels = df.loc[df["label"] != "", "label"]
    counts = labels.value_counts()
    if classes is not None:
        for i in np.flatnonzero((~labels.isin(classes)).to_numpy()):
            row = int(labels.index[i])
            out.append(
                Problem(
                    row,
                    df.at[row, "path"],
                    "label",
                    f"unknown label {df.at[row, 'label']!r}; expected one of {classes}",
                )
            )
    elif len(counts) > 2:
        listing = ", ".join(f"{k} ({v})" for k, v in counts.items())
        out.append(
            Problem(
                None,
                "",
                "label",
                f"{len(counts)} classes found: {listing}; a gender manifest has two "
                "(fix the labels, or name the two with --classes)",
            )
        )
    elif len(counts) == 1:
        out.append(
            Problem(None, "", "label", f"only one class present: {counts.index[0]!r}", WARNING)
        )
    return out


def _duplicate_problems(m: Manifest) -> list[Problem]:
    resolved = pd.Series([os.path.normpath(str(p)) for p in m.abspaths()], index=m.df.index)
    dup = resolved.duplicated(keep="first")
    first = {v: i for i, v in reversed(list(resolved.items()))}
    return [
        Problem(
            int(i),
            m.df.at[i, "path"],
            "duplicate",
            f"duplicate path (same file as row {first[resolved[i]]}, line "
            f"{first[resolved[i]] + 2})",
        )
        for i in dup[dup].index
    ]


def _split_problems(m: Manifest) -> list[Problem]:
    bad = ~m.df["split"].isin((*SPLITS, ""))
    return [
        Problem(
            int(i),
            m.df.at[i, "path"],
            "split",
            f"split {m.df.at[i, 'split']!r} is not one of {', '.join(SPLITS)} (or empty)",
        )
        for i in bad[bad].index
    ]


def _file_problem(m: Manifest, row: int, points: np.ndarray | None, decode: bool) -> list[Problem]:
    rel = m.df.at[row, "path"]
    path = m.abspath(rel)
    try:
        if decode:
            h, w = read_rgb(path).shape[:2]
        else:
            w, h = image_size(path)
    except ImageReadError as exc:
        kind = "missing" if "not found" in str(exc) else "unreadable"
        return [Problem(row, rel, kind, str(exc))]
    if points is None:
        return []
    t = LANDMARK_TOLERANCE_PX
    outside = (points[:, 0] < -t) | (points[:, 0] > w - 1 + t) | (points[:, 1] < -t)
    outside |= points[:, 1] > h - 1 + t
    if outside.any():
        idx = np.flatnonzero(outside)
        return [
            Problem(
                row,
                rel,
                "landmarks",
                f"{idx.size} landmark(s) outside the {w}x{h} image, e.g. point {idx[0]} "
                f"at ({points[idx[0], 0]:.1f}, {points[idx[0], 1]:.1f})",
            )
        ]
    return []


def check_manifest(
    path: str | os.PathLike,
    classes: list[str] | None = None,
    decode: bool = False,
    progress: Callable[[int], None] | None = None,
    threads: int = 8,
) -> CheckResult:
    """Check every row of the manifest at ``path``.

    Args:
        classes: the expected class names; labels outside them are errors. Without it, more
            than two distinct labels is an error.
        decode: fully decode each image (slow, catches truncated files) instead of reading
            its header.
        progress: called with the number of rows finished.
    """
    try:
        m = read_manifest(path)
    except ManifestError as exc:
        return CheckResult(0, [], [Problem(None, str(path), "structure", str(exc))])
    result = CheckResult(len(m), m.classes)
    result.problems += _label_problems(m, classes)
    result.problems += _duplicate_problems(m)
    result.problems += _split_problems(m)
    lms = m.landmarks()
    n_nan = np.isnan(lms).any(axis=2).sum(axis=1)
    for row in np.flatnonzero((n_nan > 0) & (n_nan < lms.shape[1])):
        result.problems.append(
            Problem(
                int(row),
                m.df.at[row, "path"],
                "landmarks",
                f"landmarks incomplete: {68 - n_nan[row]} of 68 points "
                "given (give all 68 or leave the row's columns empty)",
            )
        )

    def one(row: int) -> list[Problem]:
        points = lms[row] if n_nan[row] == 0 else None
        return _file_problem(m, row, points, decode)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for found in pool.map(one, range(len(m)), chunksize=64):
            result.problems += found
            if progress is not None:
                progress(1)
    result.problems.sort(key=lambda p: (-1 if p.row is None else p.row, p.kind))
    return result


def summarize(result: CheckResult) -> pd.DataFrame:
    """Counts of problems by severity and kind, with one example message each."""
    df = result.frame()
    if df.empty:
        return pd.DataFrame(columns=["severity", "kind", "count", "example"])
    g = df.groupby(["severity", "kind"], sort=True)
    return pd.DataFrame(
        {
            "count": g.size(),
            "example": g.apply(lambda d: _example(d.iloc[0]), include_groups=False),
        }
    ).reset_index()


def _example(p: pd.Series) -> str:
    where = "" if pd.isna(p["line"]) else f"line {int(p['line'])} {p['path']}: "
    return where + str(p["message"])
