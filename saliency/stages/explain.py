"""``explain``: per-image maps for a run's split, streamed into memory-mapped files.

Writes, per method, ``RUN/saliency/<split>/<method>/maps.npy`` (float32 ``[N, H, W]`` at the
model's input size, raw), ``index.csv`` (one row per map: image, label, group, target,
prediction, probabilities, logits, IG completeness) and ``meta.json``. Work goes in chunks;
after each chunk the maps are flushed and the count recorded, so running the same command
again continues where it stopped and ends with the same files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from saliency import __version__
from saliency.atomic import atomic_write_json, atomic_write_text
from saliency.data.manifest import relative_path
from saliency.methods.fold import fold_batchnorm
from saliency.methods.geometry import grid_geometry
from saliency.methods.names import GRID_METHODS
from saliency.methods.registry import UNITS, check_methods, explain_batch
from saliency.methods.targets import resolve_targets
from saliency.models import outputs
from saliency.models.checkpoint import file_sha256, load_model
from saliency.models.evaluate import evaluation_rows, run_rows
from saliency.models.loader import ImageSource
from saliency.models.predict import predictions_frame
from saliency.models.preprocess import normalize, to_unit
from saliency.rundir import best_checkpoint, saliency_dir
from saliency.runtime import full_float32
from saliency.stages.explain_settings import ExplainConfig, fixed_targets

PROGRESS = ".progress.json"
MIN_GRID = 4  # below this grid size CAM-type maps cannot localize facial regions


@dataclass
class ExplainResult:
    out: Path
    n: int
    resumed_from: int
    grid: tuple[int, int]
    ig_over_tolerance: int = 0
    warnings: list[str] = field(default_factory=list)


FOLD_TOLERANCE = 1e-3  # relative difference of logits allowed for the folded copy


def _ig_model(
    model, cfg: ExplainConfig, source: ImageSource, device: torch.device
) -> tuple[torch.nn.Module, str | None]:
    """The batch-norm-folded copy for IG when its logits match the model's, else the model."""
    if "ig" not in cfg.methods or not cfg.fold_bn or len(source) == 0:
        return model, None
    folded = fold_batchnorm(model)
    images, _ = next(source.batches(np.arange(min(len(source), cfg.batch_size)), cfg.batch_size))
    x = normalize(to_unit(images.to(device)), source.pre)
    with torch.no_grad():
        a, b = model(x), folded(x)
    if float((a - b).abs().max()) > FOLD_TOLERANCE * max(1.0, float(a.abs().max())):
        return model, "batch-norm folding changed the logits; IG ran on the unfolded model"
    return folded, None


def mean_face(ckpt: dict, pre, device: torch.device, workers: int = 2) -> torch.Tensor:
    """The training images' mean ``[3, H, W]`` in [0, 1] on ``device`` (IG's mean baseline)."""
    train_rows, _ = evaluation_rows(ckpt, "train")
    train = ImageSource(train_rows["path"], pre, cache_bytes=0, workers=workers)
    return train.mean().permute(2, 0, 1).float().to(device)


def _key(
    cfg: ExplainConfig, method: str, ckpt_sha: str, paths: list[str], fixed: np.ndarray | None
) -> str:
    """What decides one method's maps: the rows, checkpoint, target policy (or the fixed
    targets) and the method's own settings (IG's for ig, the upsampling rule for grid
    methods)."""
    own = {"target": cfg.target if fixed is None else fixed.tolist()}
    if method == "ig":
        own |= {"ig": cfg.ig.to_dict(), "fold_bn": cfg.fold_bn}
    if method in GRID_METHODS:
        own["upsample"] = cfg.upsample
    blob = json.dumps([method, own, ckpt_sha, paths], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def _resume_points(out: Path, keys: dict[str, str], overwrite: bool) -> dict[str, int]:
    """Rows already stored per method (0 for new ones); other settings need ``overwrite``."""
    done, clash = {}, []
    for m, key in keys.items():
        path = out / m / PROGRESS
        state = json.loads(path.read_text()) if path.is_file() else None
        if state is not None and state["key"] == key:
            done[m] = int(state["done"])
        elif state is not None and not overwrite:
            clash.append(m)
        else:
            done[m] = 0
    if clash:
        raise ValueError(
            f"{out} holds {', '.join(clash)} maps made with other settings; pass --overwrite "
            "to replace them"
        )
    return done


@full_float32
def explain_run(
    run: str | Path,
    cfg: ExplainConfig,
    device: torch.device,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> ExplainResult:
    """Compute and store the maps of ``cfg.methods`` for ``cfg.split`` of ``run``.

    Each method keeps its own progress: methods already complete with the same settings
    are skipped, and the others continue together from the earliest unfinished row."""
    methods = check_methods(cfg.methods)
    run = Path(run)
    ckpt_path = best_checkpoint(run)
    model, pre, classes, ckpt = load_model(ckpt_path, device)
    if "cam" in methods and model.fc is None:
        raise ValueError(
            f"cam does not apply to this model: {model.cam_refusal}; use gradcam or ig"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    rows, manifest = run_rows(ckpt, cfg.split, cfg.manifest)
    if cfg.limit:
        rows = rows.head(cfg.limit)
    n, size = len(rows), pre.size
    geometry = grid_geometry(model, size, cfg.upsample)
    out = saliency_dir(run, cfg.split)
    sha = file_sha256(ckpt_path)
    fixed = None
    if cfg.target_file:
        fixed = fixed_targets(cfg.target_file, rows["path"].tolist(), classes)
    keys = {m: _key(cfg, m, sha, rows["path"].tolist(), fixed) for m in methods}
    done = _resume_points(out, keys, overwrite)
    todo = [m for m in methods if done[m] < n or n == 0]
    start = min((done[m] for m in todo), default=n)
    result = ExplainResult(out, n, start, geometry.grid)
    gridded = any(m in GRID_METHODS for m in methods)
    if gridded and geometry.note:
        result.warnings.append(f"{geometry.note}; CAM-type maps use the image-resize rule")
    finer = (
        "adopt it at a larger --size"
        if "adopted" in ckpt
        else "use a larger --size or --output-stride 16"
    )
    if gridded and min(geometry.grid) < MIN_GRID:
        result.warnings.append(
            f"the map grid is {geometry.grid[0]}x{geometry.grid[1]}: too coarse to tell "
            f"facial regions apart ({finer})"
        )
    n_out = ckpt["model"]["n_outputs"]
    stores, scalars = {}, {}
    for m in todo:
        (out / m).mkdir(parents=True, exist_ok=True)
        mode = "r+" if done[m] else "w+"
        stores[m] = np.lib.format.open_memmap(
            out / m / "maps.npy", mode=mode, dtype=np.float32, shape=(n, size, size)
        )
        scalars[m] = np.lib.format.open_memmap(  # logits, target, ig error and delta
            out / m / ".scalars.npy", mode=mode, dtype=np.float32, shape=(n, n_out + 3)
        )
    true = torch.tensor(rows["label"].map({c: i for i, c in enumerate(classes)}).to_numpy())
    face = None
    if "ig" in todo and cfg.ig.baseline == "mean":
        face = mean_face(ckpt, pre, device, workers)
    source = ImageSource(rows["path"], pre, cache_bytes=0, workers=workers)
    ig_model, fold_note = _ig_model(model, cfg, source, device) if "ig" in todo else (model, None)
    if fold_note:
        result.warnings.append(fold_note)
    if progress is not None and start:
        progress(start)

    def checkpoint(upto: int) -> None:
        for m in todo:
            stores[m].flush()
            scalars[m].flush()
            state = {"key": keys[m], "done": max(done[m], upto), "n": n}
            atomic_write_json(out / m / PROGRESS, state)

    unflushed = 0
    for images, idx in source.batches(np.arange(start, n), cfg.batch_size):
        unit = to_unit(images.to(device))
        idx_np = idx.numpy()

        def choose(logits: torch.Tensor, idx: torch.Tensor = idx) -> torch.Tensor:
            if fixed is not None:
                return torch.from_numpy(fixed[idx.numpy()]).to(logits.device)
            return resolve_targets(
                cfg.target, outputs.predicted(logits), true[idx].to(logits.device), classes
            )

        res, target = explain_batch(
            model, unit, pre, todo, choose, cfg.ig, face, ig_model, geometry
        )
        logits, target = res.logits.float().cpu().numpy(), target.cpu().numpy()
        for m in todo:
            stores[m][idx_np] = res.maps[m].float().cpu().numpy()
            scalars[m][idx_np, :n_out] = logits
            scalars[m][idx_np, n_out] = target
        if res.ig_error is not None:
            scalars["ig"][idx_np, n_out + 1] = res.ig_error.cpu().numpy()
            scalars["ig"][idx_np, n_out + 2] = res.ig_delta.cpu().numpy()
        unflushed += len(idx_np)
        if unflushed >= cfg.chunk:  # rows are processed in order: all below idx[-1] are done
            checkpoint(int(idx_np[-1]) + 1)
            unflushed = 0
        if progress is not None:
            progress(len(idx_np))
    checkpoint(n)
    common = {
        "normalization": "none (raw maps)",
        "shape": [n, size, size],
        "grid": list(geometry.grid),
        "split": cfg.split,
        "target_policy": cfg.target if fixed is None else f"as in {cfg.target_file}",
        "classes": classes,
        "checkpoint": {
            "path": str(ckpt_path),
            "sha256": sha,
            "epoch": ckpt["epoch"],
            "arch": ckpt["model"]["arch"],
        },
        "preprocessing": pre.to_dict(),
        "explained_output": ckpt.get("adopted", {}).get("explained", "logits"),
        "manifest": str(manifest),
        "mask_manifest": str(Path(cfg.manifest).resolve()) if cfg.manifest else None,
        "saliency_version": __version__,
    }
    for m in todo:
        index = _index(scalars[m], rows, manifest, classes, n_out, m == "ig")
        atomic_write_text(out / m / "index.csv", index.to_csv(index=False))
        own = {
            "method": m,
            "units": UNITS[m],
            "upsampling": geometry.to_dict() if m in GRID_METHODS else None,
            "ig": cfg.ig.to_dict() if m == "ig" else None,
            "batchnorm_folded": bool(m == "ig" and ig_model is not model),
        }
        atomic_write_json(out / m / "meta.json", own | common)
    if "ig" in methods:
        index = pd.read_csv(out / "ig" / "index.csv")
        result.ig_over_tolerance = int((index["ig_error"] > cfg.ig.tolerance).sum())
    return result


def _index(
    scalars: np.ndarray,
    rows: pd.DataFrame,
    manifest: Path,
    classes: list[str],
    n_out: int,
    ig: bool,
) -> pd.DataFrame:
    """index.csv: one row per map (image, label, group, target, prediction, logits, IG)."""
    index = predictions_frame(rows, np.asarray(scalars[:, :n_out]), classes)
    index["path"] = [relative_path(p, manifest.parent) for p in index["path"]]
    index.insert(4, "target", np.asarray(classes, dtype=object)[scalars[:, n_out].astype(int)])
    if ig:
        index["ig_error"] = scalars[:, n_out + 1]
        index["ig_delta"] = scalars[:, n_out + 2]
    return index


def run(
    run_dir: str | Path,
    cfg: ExplainConfig,
    device: str = "auto",
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> ExplainResult:
    """The explain stage: :func:`explain_run` on the resolved device, recorded in the run."""
    from saliency.rundir import record, require_run
    from saliency.runtime import resolve_device

    run_dir = require_run(run_dir)
    res = explain_run(run_dir, cfg, resolve_device(device), workers, progress, overwrite)
    record(run_dir, f"explain:{cfg.split}", cfg.to_dict())
    return res
