"""Names the data commands offer (importer formats), importable without pandas (for the CLI)."""

from __future__ import annotations

FORMAT_NAMES: tuple[str, ...] = ("imagefolder", "csv", "celeba", "utkface", "fairface", "morph",
                                 "ms1mv2")  # fmt: skip
