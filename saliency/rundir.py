"""The run directory (DESIGN.md, "Run directory"): paths and the config.json record.

Every command that works on a run records its resolved configuration in ``RUN/config.json``
under its own name, with provenance (time, version, command line).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from saliency.data.atomic import atomic_write_json

CONFIG = "config.json"


def best_checkpoint(run: str | os.PathLike) -> Path:
    return Path(run) / "checkpoints" / "best.pt"


def last_checkpoint(run: str | os.PathLike) -> Path:
    return Path(run) / "checkpoints" / "last.pt"


def eval_dir(run: str | os.PathLike, split: str) -> Path:
    return Path(run) / "eval" / split


def require_run(run: str | os.PathLike) -> Path:
    """The run folder, or a clear error when it has no trained checkpoint."""
    run = Path(run)
    if not best_checkpoint(run).is_file():
        raise FileNotFoundError(
            f"{run} has no checkpoints/best.pt; train a model there first with "
            f"`saliency train --manifest M --out {run}`"
        )
    return run


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def record(run: str | os.PathLike, command: str, config: dict) -> None:
    """Merge ``config`` for ``command`` into ``RUN/config.json`` with provenance."""
    from saliency import __version__

    path = Path(run) / CONFIG
    data = json.loads(path.read_text()) if path.is_file() else {"commands": {}}
    data["commands"][command] = {
        "config": _jsonable(config),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "saliency_version": __version__,
        "argv": sys.argv,
    }
    atomic_write_json(path, data)
