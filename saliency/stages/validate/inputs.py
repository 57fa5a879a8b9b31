"""What validate reads or has made before it judges: per-image shares, the floor's maps
(the re-initialized model explained like the run), the ablations and the image subset of the
randomization and curve passes. Under torchrun each is spread over the ranks (sharded
stages, or parts merged on rank 0 and sent to every rank), so every rank goes on with the
same tables."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from saliency.analysis.share.table import share_table
from saliency.configs.checks import AblationConfig, ValidateConfig
from saliency.configs.maps import ExplainConfig
from saliency.data.regions import REGIONS
from saliency.distributed import World, barrier, broadcast
from saliency.methods.store import absolute_paths, read_maps
from saliency.models.checkpoint import Checkpoint, save_checkpoint
from saliency.models.loader import ImageSource
from saliency.models.randomize import reinitialized
from saliency.rundir import best_checkpoint, saliency_dir, validation_dir
from saliency.runs import Run
from saliency.stages import registry
from saliency.stages.contract import StageContext


def shares(folder: Path, workers: int, world: World, parts: Path) -> pd.DataFrame:
    """One method's per-image shares; under torchrun the ranks share the images (parts
    under ``parts``) and every rank gets rank 0's merged table."""
    got = share_table(folder, workers=workers, shard=(parts, world.rank, world.size))
    got = broadcast(got if world.main else None)
    per, _, meta = got
    per["image"] = absolute_paths(per, meta)
    return per


def floor_maps(
    run: Path, cfg: ValidateConfig, model, ckpt: Checkpoint, device, methods, world: World
) -> Path:
    """Explain the re-initialized copy of ``model`` (``RUN/validation/floor``) like the run.
    The floor's maps follow the run's: when the run was explained again with other settings
    (another IG baseline), the floor's old maps are replaced, not refused."""
    floor = validation_dir(run) / "floor"
    if world.main and not best_checkpoint(floor).is_file():
        state = {k: v.cpu() for k, v in reinitialized(model, cfg.seed).state_dict().items()}
        save_checkpoint(best_checkpoint(floor), replace(ckpt, state_dict=state, floor=True))
    ecfg, _ = Run(run).recorded_configs(ExplainConfig)[cfg.split]
    same = Run(run).same_images(cfg.split, ecfg, methods)
    barrier()  # the floor's checkpoint is written
    ctx = StageContext(run=floor, device=str(device), workers=cfg.workers, rank=world.rank,
                       world_size=world.size, overwrite=True)  # fmt: skip
    registry.get("explain").run_in(same, ctx)
    return floor


def ablations(run: Path, fill: str, cfg: ValidateConfig, world: World) -> pd.DataFrame | None:
    drops = Run(run).ablation_drops(fill)
    if drops is None or any(f"drop_{r}" not in drops.columns for r in REGIONS):
        # none, or only some regions (an `ablate --region eyes` before): all six in one pass
        ecfg, _ = Run(run).recorded_configs(ExplainConfig)[cfg.split]
        acfg = AblationConfig(split=cfg.split, fill=fill, manifest=ecfg.manifest)
        ctx = StageContext(run=run, device=cfg.device, workers=cfg.workers, rank=world.rank,
                           world_size=world.size)  # fmt: skip
        registry.get("ablate").run_in(acfg, ctx)
        drops = Run(run).ablation_drops(fill)
    return drops


def null_ablations(null: Path, fill: str, cfg: ValidateConfig, world: World) -> pd.DataFrame:
    """A null model's per-image drops (:func:`ablations`) with absolute image paths, so that
    the K nulls' drops pair by image: a null's rows come from its own ``manifest.csv``
    (written by ``saliency null`` in its folder), whose paths are relative to that folder."""
    drops = ablations(null, fill, cfg, world).copy()
    drops["path"] = [str((null / p).resolve()) for p in drops["path"]]
    return drops


def subset(run: Path, split: str, method: str, n: int, pre):
    """``n`` explained images, taken from the cells in turn (each cell's images in the maps'
    order: the first of every cell, then the second, ...), so that every cell is in the
    per-cell tables however the split is ordered: ``uint8 [n, h, w, 3]`` images, their
    targets ``[n]``, their positions in the maps ``[n]`` and their cells."""
    from saliency.data.cells import cell_column

    _, index, meta = read_maps(saliency_dir(run, split, method))
    classes = meta["classes"]
    labelled = index.assign(group=index["group"] if "group" in index.columns else "")
    cells = cell_column(labelled.fillna({"group": ""}), classes)
    turn = pd.Series(cells).groupby(cells).cumcount().to_numpy()  # k-th image of its cell
    positions = np.lexsort((np.arange(len(index)), turn))[: min(n, len(index))]
    paths = absolute_paths(index.iloc[positions], meta)
    source = ImageSource(paths, pre, cache_bytes=0, workers=0)
    n = len(positions)
    images = torch.cat([b for b, _ in source.batches(np.arange(n), 64)]) if n else None
    target = torch.tensor([classes.index(t) for t in index["target"].iloc[positions]])
    return images, target, positions, [str(c) for c in cells[positions]]
