"""Importers: public data sets' own annotation layouts -> the manifest (DESIGN.md).

Each format's ``load(src, opts, skips)`` returns rows with absolute image paths; the shared
:func:`~saliency.data.importers.common.finalize` checks files, applies split options and
makes paths relative to the manifest. Rows that cannot be used are returned with a reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from saliency.data.importers import celeba, fairface, imagefolder, ms1mv2, tables, utkface
from saliency.data.importers.common import ImportOptions, ImportResult, Skips, finalize
from saliency.data.names import FORMAT_NAMES

Loader = Callable[[Path, ImportOptions, Skips], pd.DataFrame]
FORMATS: dict[str, Loader] = {
    "imagefolder": imagefolder.load,
    "csv": tables.load_csv,
    "celeba": celeba.load,
    "utkface": utkface.load,
    "fairface": fairface.load,
    "morph": tables.load_morph,
    "ms1mv2": ms1mv2.load,
}
assert tuple(FORMATS) == FORMAT_NAMES  # the CLI offers the names module's list


def import_dataset(
    fmt: str, src: str | os.PathLike, out: str | os.PathLike, opts: ImportOptions | None = None
) -> ImportResult:
    """Read data set ``src`` in format ``fmt`` into manifest rows for a manifest at ``out``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist")
    opts = opts or ImportOptions()
    skips = Skips()
    rows = FORMATS[fmt](src, opts, skips)
    return finalize(rows, out, opts, skips)


__all__ = ["FORMATS", "ImportOptions", "ImportResult", "import_dataset"]
