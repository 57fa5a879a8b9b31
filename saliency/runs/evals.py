"""A run's evaluations (``RUN/eval/``): the splits of its own images, and named sets of
other data sets (``saliency evaluate --manifest OTHER --name NAME``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from saliency.data.manifest import SPLITS
from saliency.rundir import eval_dir

OWN = (*SPLITS, "all")  # the folders of the run's own images, in this order


@dataclass(frozen=True)
class Evaluation:
    """One finished evaluation: ``RUN/eval/<name>/`` with its metrics.json."""

    name: str  # the folder: a split of the run's images, or a named set
    folder: Path
    split: str  # the split of the rows it evaluated
    manifest: str | None  # the manifest the rows came from
    named: bool  # another data set (evaluate --name)


def evaluations(run: str | os.PathLike) -> list[Evaluation]:
    """Every finished evaluation of ``run`` (a folder of ``RUN/eval/`` with metrics.json):
    the run's own splits first (train, val, test, all), then the named sets by name."""
    found = []
    for path in eval_dir(run).glob("*/metrics.json"):
        name = path.parent.name
        metrics = json.loads(path.read_text())
        named = name not in OWN
        split = metrics.get("set", {}).get("split", "test") if named else name
        found.append(Evaluation(name, path.parent, split, metrics.get("manifest"), named))
    rank = {s: k for k, s in enumerate(OWN)}
    return sorted(found, key=lambda e: (e.named, rank.get(e.name, 0), e.name))
