"""Progress bars for the commands (tqdm on stderr; quiet when not a terminal and in CI)."""

from __future__ import annotations

import os
import sys

from tqdm import tqdm


def bar(total: int, desc: str, unit: str = "img") -> tqdm:
    """A tqdm bar; disabled when stderr is not a terminal unless SALIENCY_PROGRESS=1."""
    forced = os.environ.get("SALIENCY_PROGRESS")
    disable = (forced == "0") or (forced != "1" and not sys.stderr.isatty())
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)
