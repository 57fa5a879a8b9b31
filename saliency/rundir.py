"""The run directory (DESIGN.md, "Run directory"): every RUN/ path and the config.json record.

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

from saliency.atomic import atomic_write_json

CONFIG = "config.json"


def best_checkpoint(run: str | os.PathLike) -> Path:
    return Path(run) / "checkpoints" / "best.pt"


def last_checkpoint(run: str | os.PathLike) -> Path:
    return Path(run) / "checkpoints" / "last.pt"


def train_log(run: str | os.PathLike) -> Path:
    return Path(run) / "train_log.csv"


def eval_dir(run: str | os.PathLike, split: str | None = None) -> Path:
    """``RUN/eval/`` or, with ``split``, ``RUN/eval/<split>/`` (a split of the run's images,
    or a named evaluation set of another manifest, ``evaluate --name``)."""
    base = Path(run) / "eval"
    return base / split if split else base


def images_record(run: str | os.PathLike) -> Path:
    """``RUN/images.json``: the run's images when its checkpoint names none (an adopted model
    without ``--manifest``), recorded by the first ``evaluate --manifest``."""
    return Path(run) / "images.json"


def saliency_dir(run: str | os.PathLike, split: str, method: str | None = None) -> Path:
    """``RUN/saliency/<split>/`` or, with ``method``, that method's maps folder."""
    base = Path(run) / "saliency" / split
    return base / method if method else base


def averages_dir(run: str | os.PathLike) -> Path:
    return Path(run) / "averages"


def ablation_dir(run: str | os.PathLike) -> Path:
    return Path(run) / "ablation"


def ablation_result_dir(run: str | os.PathLike, region: str, fill: str, mode: str) -> Path:
    return ablation_dir(run) / f"{region}_{fill}_{mode}"


def share_dir(run: str | os.PathLike, method: str | None = None, split: str = "test") -> Path:
    """``RUN/share/`` or, with ``method``, ``RUN/share/<method>_<maps split>/``."""
    base = Path(run) / "share"
    return base / f"{method}_{split}" if method else base


def agreement_dir(run: str | os.PathLike) -> Path:
    return Path(run) / "agreement"


def null_dir(run: str | os.PathLike, seed: int | None = None, first: int = 0) -> Path:
    """``RUN/null/``, the null model of the first permutation seed (``first``, ``saliency
    null --seed``); for another ``seed`` (``saliency null --seeds K``), ``RUN/nulls/seed<S>/``."""
    if seed is None or seed == first:
        return Path(run) / "null"
    return Path(run) / "nulls" / f"seed{seed}"


def null_dirs(
    run: str | os.PathLike, seed: int | None = None, seeds: int | None = None
) -> list[Path]:
    """The folders of the K null models, seeds ``seed .. seed + K - 1`` (by default as
    ``saliency null`` recorded them in ``config.json``; ``RUN/null/`` alone without a
    record): the first is ``RUN/null/``."""
    if seed is None or seeds is None:
        path = Path(run) / CONFIG
        data = json.loads(path.read_text()) if path.is_file() else {}
        rec = data.get("commands", {}).get("null", {}).get("config", {})
        seed = int(rec.get("seed", 0)) if seed is None else seed
        seeds = int(rec.get("seeds", 1)) if seeds is None else seeds
    return [null_dir(run, seed + k, seed) for k in range(seeds)]


def attributes_dir(run: str | os.PathLike) -> Path:
    """``RUN/attributes/``: per_image.csv, skipped.csv, summary.csv, bins.csv, gaps.csv and
    attributes.png (``saliency attributes``)."""
    return Path(run) / "attributes"


def validation_dir(run: str | os.PathLike) -> Path:
    return Path(run) / "validation"


def figures_dir(run: str | os.PathLike) -> Path:
    return Path(run) / "figures"


def report_path(run: str | os.PathLike) -> Path:
    return Path(run) / "report.html"


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
