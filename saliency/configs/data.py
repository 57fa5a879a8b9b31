"""Settings of the data stage: where a study's images come from, and whether to check them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from saliency.data.import_options import ImportOptions
from saliency.data.names import FORMAT_NAMES
from saliency.data.synth.config import SynthConfig
from saliency.settings import setting

SOURCES = ("synth", "import", "manifest")


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
    workers: int | None = setting(None, help="worker processes (default: CPUs)", context=True)

    def manifest_path(self, out: str | Path) -> Path:
        """The manifest the data stage leaves: the given one, or ``out/manifest.csv``."""
        return Path(self.path) if self.source == "manifest" else Path(out) / "manifest.csv"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"data.source must be one of {', '.join(SOURCES)}, not "
                             f"{self.source!r}")  # fmt: skip
        if self.source != "synth" and not self.path:
            raise ValueError(f"data.source = {self.source!r} needs data.path (your copy of the "
                             "data)")  # fmt: skip
        if self.source == "import" and not self.format:
            raise ValueError("data.source = 'import' needs data.format (celeba, utkface, ...)")
