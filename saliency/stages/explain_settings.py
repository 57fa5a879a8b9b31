"""The explain stage's settings: :class:`ExplainConfig` as recorded in ``RUN/config.json``,
the settings a run's maps were made with, and fixed targets taken from another model's maps
(the null's and the floor's maps explain the run's own target classes)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from saliency.methods.ig import IGConfig


@dataclass
class ExplainConfig:
    split: str = "test"
    methods: list[str] = field(default_factory=lambda: ["cam", "gradcam", "ig"])
    target: str = "predicted"
    limit: int | None = None
    batch_size: int = 32
    chunk: int = 256
    ig: IGConfig = field(default_factory=IGConfig)
    upsample: str = "receptive-field"  # or "half-pixel" (the image-resize rule)
    fold_bn: bool = True  # IG runs on the batch-norm-folded copy when it matches
    # another model's index.csv whose targets these maps explain, image by image (the null
    # model's and the floor's maps are for the classes the run's own maps were made for)
    target_file: str | None = None
    # a manifest with region masks for the same images (matched by path), for share and
    # validate; for an adopted run that names no images, the images themselves
    manifest: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ig"] = self.ig.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ExplainConfig:
        """The config that :meth:`to_dict` recorded (``RUN/config.json``)."""
        d = dict(d)
        d["ig"] = IGConfig(**d.get("ig", {}))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


DEFAULT_METHODS = ("cam", "gradcam", "ig")


def applicable(run: str | Path, methods: list[str]) -> tuple[list[str], str | None]:
    """``methods`` less cam when the run's model is an adopted one that is not CAM-ready
    (and the note that says so); unchanged while the run has no model yet."""
    record = Path(run) / "model" / "adopted.json"  # written by saliency adopt
    if "cam" not in methods or not record.is_file():
        return list(methods), None
    rec = json.loads(record.read_text())
    if not rec["cam_ready"]:
        return [m for m in methods if m != "cam"], f"cam left out: {rec['cam_reason']}"
    return list(methods), None


def default_methods(run: str | Path) -> tuple[list[str], str | None]:
    """The methods ``explain`` runs when none are named: cam, gradcam and ig, less cam for an
    adopted model that is not CAM-ready (and the note that says so)."""
    return applicable(run, list(DEFAULT_METHODS))


def fixed_targets(target_file: str | Path, paths: list[str], classes: list[str]) -> np.ndarray:
    """Class indices ``[N]`` for images ``paths`` (absolute) from another model's maps
    index (``target_file``, with its meta.json beside it), matched by path."""
    from saliency.methods.store import absolute_paths, read_index

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


def recorded_configs(run: str | Path) -> dict[str, tuple[ExplainConfig, list[str]]]:
    """Per explained split of ``run``: its recorded explain settings (``config.json``) and
    the methods with maps there."""
    from saliency.rundir import CONFIG

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
        out[split_dir.name] = (ExplainConfig.from_dict(rec["config"]), methods)
    return out
