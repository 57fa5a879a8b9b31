"""Readers of a run's maps records: the explain settings recorded per split, another
model's maps of the same images, and the null model's per-image shares."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import pandas as pd

from saliency.methods.store import absolute_paths, read_index
from saliency.rundir import CONFIG, null_dirs, saliency_dir, share_dir


class Recorded(Protocol):
    """A config that reads back what its ``to_dict`` recorded (e.g. ``ExplainConfig``)."""

    @classmethod
    def from_dict(cls, d: dict) -> Recorded: ...


C = TypeVar("C", bound=Recorded)


def recorded_configs(
    run: str | os.PathLike,
    config: type[C] | None = None,
    warn: Callable[[str], None] | None = None,
) -> dict[str, tuple[C, list[str]]]:
    """Per explained split of ``run``: its recorded explain settings (``config.json``, read
    as ``config``, by default :class:`saliency.configs.maps.ExplainConfig`; a setting recorded
    under an older name is read under its new one, and ``warn`` hears so) and the methods
    with maps there."""
    if config is None:
        from saliency.configs.maps import ExplainConfig as config
    run = Path(run)
    cfg_file = run / CONFIG
    commands = json.loads(cfg_file.read_text())["commands"] if cfg_file.is_file() else {}
    out = {}
    for split_dir in sorted((run / "saliency").glob("*")):
        methods = sorted(p.parent.name for p in split_dir.glob("*/meta.json"))
        if not methods:
            continue
        rec = commands.get(f"explain:{split_dir.name}")
        if rec is None:
            raise ValueError(
                f"{run} has maps for {split_dir.name} but no explain record in {CONFIG}; "
                f"explain again with `saliency explain --run {run} --split {split_dir.name}`"
            )
        where = f"{cfg_file} explain:{split_dir.name}"
        out[split_dir.name] = (config.from_dict(rec["config"], where, warn), methods)
    return out


E = TypeVar("E")


def same_images(run: str | os.PathLike, split: str, ecfg: E, methods: list[str]) -> E:
    """``ecfg`` (explain settings, a dataclass) for another model's maps of the images the
    run explained on ``split``, for the same target classes, image by image."""
    first = saliency_dir(run, split, methods[0])
    n = json.loads((first / "meta.json").read_text())["shape"][0]
    return replace(ecfg, methods=methods, limit=n or None, target_file=str(first / "index.csv"))


def fixed_targets(
    target_file: str | os.PathLike, paths: list[str], classes: list[str]
) -> np.ndarray:
    """Class indices ``int64 [N]`` for images ``paths`` (absolute) from another model's maps
    index (``target_file``, with its meta.json beside it), matched by path."""
    index, meta = read_index(Path(target_file).parent)
    if list(meta["classes"]) != list(classes):
        raise ValueError(f"{target_file} explains classes {meta['classes']}, not {classes}")
    of = dict(zip(absolute_paths(index, meta), index["target"].astype(str), strict=True))
    missing = [p for p in paths if str(Path(p).resolve()) not in of]
    if missing:
        raise ValueError(
            f"{len(missing)} image(s) have no target in {target_file}, e.g. {missing[0]}"
        )
    return np.array([classes.index(of[str(Path(p).resolve())]) for p in paths], dtype=np.int64)


def null_shares(run: str | os.PathLike, method: str, split: str) -> list[pd.DataFrame]:
    """The null models' per-image shares for ``method`` (``share/`` in each of
    :func:`saliency.rundir.null_dirs`, written by ``saliency null``), each with an ``image``
    column; the nulls with none are left out (an empty list without a null)."""
    out = []
    for null in null_dirs(run):
        per_file = share_dir(null, method, split) / "per_image.csv"
        meta_file = saliency_dir(null, split, method) / "meta.json"
        if not per_file.is_file() or not meta_file.is_file():
            continue
        per = pd.read_csv(per_file, keep_default_na=False)
        per["image"] = absolute_paths(per, json.loads(meta_file.read_text()))
        out.append(per)
    return out
