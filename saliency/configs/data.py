"""Settings of the data stage: where a study's images come from, and whether to check them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from saliency.data.import_options import ImportOptions
from saliency.data.names import FORMAT_NAMES
from saliency.data.synth.config import SynthConfig
from saliency.settings import setting

SOURCES = ("synth", "import", "manifest", "splits")
SPLIT_NAMES = ("train", "val", "test")


@dataclass
class DataConfig:
    out: str = setting(help="the folder the manifest is written to", context=True)
    source: str = setting(
        "synth",
        help="synth (render faces), import (a data set's own layout) or manifest (one you made)",
        choices=SOURCES,
    )
    path: str | None = setting(None, help="your copy of the data: the data set or the manifest")
    format: str | None = setting(None, help="the data set's layout (source import)",
                                 choices=FORMAT_NAMES)  # fmt: skip
    preview: bool = setting(True, help="write a preview sheet of rendered faces")
    check: bool = setting(True, help="check the manifest before anything trains on it")
    synth: SynthConfig = setting(help="the synthetic faces (source synth)", factory=SynthConfig)
    imports: ImportOptions = setting(
        help="the importer's options (source import)", factory=ImportOptions, renamed=("import",)
    )
    splits: dict[str, dict] | None = setting(
        None,
        help="source splits: one data set per split, each a table with its format, path and "
        'importer options, e.g. [data.splits.test] format = "morph", path = "..."',
    )
    workers: int | None = setting(None, help="worker processes (default: CPUs)", context=True)

    def manifest_path(self, out: str | Path) -> Path:
        """The manifest the data stage leaves: the given one, or ``out/manifest.csv``."""
        return Path(self.path) if self.source == "manifest" else Path(out) / "manifest.csv"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"data.source must be one of {', '.join(SOURCES)}, not "
                             f"{self.source!r}")  # fmt: skip
        if self.source == "splits":
            split_sources(self.splits)
            return
        if self.source != "synth" and not self.path:
            raise ValueError(f"data.source = {self.source!r} needs data.path (your copy of the "
                             "data)")  # fmt: skip
        if self.source == "import" and not self.format:
            raise ValueError("data.source = 'import' needs data.format (celeba, utkface, ...)")


def split_sources(tables: dict[str, dict] | None) -> dict[str, tuple[str, str, ImportOptions]]:
    """``data.splits``: split -> (format, path, importer options), checked: train and val
    are needed, test is optional (the reference protocol: train on one data set, validate
    on a second, test on a third)."""
    from saliency.settings import build

    tables = tables or {}
    unknown = [k for k in tables if k not in SPLIT_NAMES]
    if unknown:
        raise ValueError(f"data.splits.{unknown[0]}: a split is one of {', '.join(SPLIT_NAMES)}")
    missing = [k for k in ("train", "val") if k not in tables]
    if missing:
        raise ValueError(f"data.source = 'splits' needs a [data.splits.{missing[0]}] table")
    out = {}
    for split, table in tables.items():
        table = dict(table)
        fmt, path = table.pop("format", None), table.pop("path", None)
        if fmt not in FORMAT_NAMES or not path:
            raise ValueError(f"data.splits.{split} needs format (one of "
                             f"{', '.join(FORMAT_NAMES)}) and path")  # fmt: skip
        try:
            opts = build(ImportOptions, table)
        except ValueError as exc:
            raise ValueError(f"data.splits.{split}: {exc}") from None
        out[split] = (fmt, str(path), opts)
    return out
