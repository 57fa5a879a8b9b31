"""What explain records: the key that decides a method's maps, meta.json's fields, and what
to say about the grid maps' placement and resolution."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from saliency import __version__
from saliency.configs.maps import ExplainConfig
from saliency.methods.base import Method
from saliency.methods.geometry import GridGeometry
from saliency.methods.registry import REGISTRY
from saliency.models.checkpoint import Checkpoint

MIN_GRID = 4  # below this grid size CAM-type maps cannot localize facial regions


def method_key(
    cfg: ExplainConfig, method: Method, settings, ckpt_sha: str, paths: list[str],
    fixed: np.ndarray | None,
) -> str:  # fmt: skip
    """What decides one method's maps: the rows, checkpoint, target policy (or the fixed
    targets) and the method's own part (its settings and, with a preparation step, whether
    it was allowed; the upsampling rule for grid methods)."""
    own = {"target": cfg.target if fixed is None else fixed.tolist()} | method.key(settings)
    if method.prepare is not None:
        own["fold_bn"] = cfg.fold_bn
    if method.grid:
        own["upsample"] = cfg.upsample
    blob = json.dumps([method.name, own, ckpt_sha, paths], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def grid_warnings(methods: list[Method], geometry: GridGeometry, ckpt: Checkpoint) -> list[str]:
    """What to say about the grid maps' placement and resolution."""
    if not any(m.grid for m in methods):
        return []
    out = [f"{geometry.note}; CAM-type maps use the image-resize rule"] if geometry.note else []
    finer = (
        "adopt it at a larger --size"
        if ckpt.adopted
        else "use a larger --size or --output-stride 16"
    )
    if min(geometry.grid) < MIN_GRID:
        out.append(
            f"the map grid is {geometry.grid[0]}x{geometry.grid[1]}: too coarse to tell "
            f"facial regions apart ({finer})"
        )
    return out


def method_meta(m: Method, settings, geometry: GridGeometry, prepared: dict, model) -> dict:
    """The method's own part of meta.json: units, placement of grid maps, its settings (the
    key of every method with settings is present, null unless it is this one) and whether it
    ran on its prepared (batch-norm-folded) model."""
    own = {"method": m.name, "units": m.units, "upsampling": geometry.to_dict() if m.grid else None}
    own |= {other.name: None for other in REGISTRY.values() if other.settings is not None}
    if m.settings is not None:
        own[m.name] = dataclasses.asdict(settings)
    return own | {"batchnorm_folded": bool(prepared.get(m.name, model) is not model)}


def common_meta(
    cfg: ExplainConfig, fixed: np.ndarray | None, n: int, geometry: GridGeometry,
    classes: list[str], pre, manifest: Path, ckpt_path: Path, sha: str, ckpt: Checkpoint,
) -> dict:  # fmt: skip
    """What meta.json records for every method: shape, grid, split, targets, checkpoint,
    preprocessing, explained output, manifests and version."""
    return {
        "normalization": "none (raw maps)",
        "shape": [n, *pre.hw],
        "grid": list(geometry.grid),
        "split": cfg.split,
        "target_policy": cfg.target if fixed is None else f"as in {cfg.target_file}",
        "classes": classes,
        "checkpoint": {
            "path": str(ckpt_path),
            "sha256": sha,
            "epoch": ckpt.epoch,
            "arch": ckpt.arch,
        },
        "preprocessing": pre.to_dict(),
        "explained_output": ckpt.explained,
        # a transformer: the layer, its patch grid and the class/register tokens dropped
        "tokens": (ckpt.adoption or {}).get("tokens"),
        "manifest": str(manifest),
        "mask_manifest": str(Path(cfg.manifest).resolve()) if cfg.manifest else None,
        "saliency_version": __version__,
    }
