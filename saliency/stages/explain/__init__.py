"""``explain``: per-image maps for a run's split, streamed into memory-mapped files.

Writes, per method, ``RUN/saliency/<split>/<method>/maps.npy`` (float32 ``[N, H, W]`` at the
model's input size, raw), ``index.csv`` (one row per map: image, label, group, target,
prediction, probabilities, logits, each method's own columns such as IG's completeness) and
``meta.json``, through the map store's writer (:class:`saliency.methods.store.MapStore`). Work
goes in chunks; after each chunk the maps are flushed and the count recorded, so running the
same command again continues where it stopped and ends with the same files. Everything
particular to a method (its settings, columns, preparation, refusal, run data) comes from its
:class:`~saliency.methods.base.Method` record: this stage names no method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from saliency.configs.maps import DEFAULT_METHODS, ExplainConfig
from saliency.distributed import World, barrier
from saliency.methods.base import MEAN_FACE, Method
from saliency.methods.geometry import grid_geometry
from saliency.methods.registry import REGISTRY, check_methods, explain_batch, method_settings
from saliency.methods.store import MapStore
from saliency.methods.targets import resolve_targets
from saliency.models import outputs
from saliency.models.checkpoint import Checkpoint, file_sha256, load_model
from saliency.models.evaluate import run_rows
from saliency.models.loader import ImageSource
from saliency.models.preprocess import normalize, to_unit
from saliency.parts import Parts, key_of, run_sharded
from saliency.rundir import best_checkpoint, saliency_dir
from saliency.runs import fixed_targets, mean_face
from saliency.runtime import full_float32
from saliency.stages.contract import Result, StageContext
from saliency.stages.explain.meta import common_meta, grid_warnings, method_key, method_meta


@dataclass
class ExplainResult:
    out: Path
    n: int
    resumed_from: int
    grid: tuple[int, int]
    flagged: dict[str, int] = field(default_factory=dict)  # method -> rows its check flags
    summaries: dict[str, str] = field(default_factory=dict)  # method -> its own columns' line
    warnings: list[str] = field(default_factory=list)


def _settings(cfg: ExplainConfig, methods: list[Method]) -> dict:
    """Each method's settings: the config's field of its settings type (for IG, the
    ``ig`` field), else its defaults (None for a method without settings)."""
    found = method_settings(*(getattr(cfg, f.name) for f in dataclasses.fields(cfg)))
    return {m.name: found.get(m.name, m.defaults()) for m in methods}


def _prepare(
    model, methods: list[Method], settings: dict, cfg: ExplainConfig, source: ImageSource,
    device: torch.device,
) -> tuple[dict[str, torch.nn.Module], list[str]]:  # fmt: skip
    """The prepared models of the methods with a preparation step (IG's batch-norm-folded
    copy), checked on the split's first batch, unless ``cfg.fold_bn`` is off; and the notes
    of those that kept the model as it is."""
    wanting = [m for m in methods if m.prepare is not None]
    if not wanting or not cfg.fold_bn or len(source) == 0:
        return {}, []
    images, _ = next(source.batches(np.arange(min(len(source), cfg.batch_size)), cfg.batch_size))
    x = normalize(to_unit(images.to(device)), source.pre)
    prepared, notes = {}, []
    for m in wanting:
        prepared[m.name], note = m.prepare(model, settings[m.name], x)
        notes += [note] if note else []
    return prepared, notes


def _chooser(
    cfg: ExplainConfig, fixed: np.ndarray | None, true: torch.Tensor, classes: list[str],
    idx: torch.Tensor,
) -> Callable[[torch.Tensor], torch.Tensor]:  # fmt: skip
    """``logits [B, n_outputs] -> target [B]`` for the rows ``idx`` of a batch."""

    def choose(logits: torch.Tensor) -> torch.Tensor:
        if fixed is not None:
            return torch.from_numpy(fixed[idx.numpy()]).to(logits.device)
        return resolve_targets(
            cfg.target, outputs.predicted(logits), true[idx].to(logits.device), classes
        )

    return choose


@full_float32
def explain_run(
    run: str | Path,
    cfg: ExplainConfig,
    device: torch.device,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
    world: World | None = None,
) -> ExplainResult | None:
    """Compute and store the maps of ``cfg.methods`` for ``cfg.split`` of ``run``.

    Each method keeps its own progress: methods already complete with the same settings
    are skipped, and the others continue together from the earliest unfinished row. Under
    torchrun (``world``) each rank explains its shard into parts, and rank 0 merges them
    into the same files (``None`` on the other ranks)."""
    world = world or World()
    chosen = [REGISTRY[m] for m in check_methods(cfg.methods)]
    run = Path(run)
    ckpt_path = best_checkpoint(run)
    model, pre, classes, ckpt = load_model(ckpt_path, device)
    _refuse(model, chosen)
    for p in model.parameters():
        p.requires_grad_(False)
    rows, manifest = run_rows(ckpt, cfg.split, cfg.manifest, run)
    if cfg.limit:
        rows = rows.head(cfg.limit)
    n, paths, settings = len(rows), rows["path"].tolist(), _settings(cfg, chosen)
    geometry = grid_geometry(model, pre.size, cfg.upsample)
    sha = file_sha256(ckpt_path)
    fixed = fixed_targets(cfg.target_file, paths, classes) if cfg.target_file else None
    keys = {m.name: method_key(cfg, m, settings[m.name], sha, paths, fixed) for m in chosen}
    store = MapStore(saliency_dir(run, cfg.split), n, pre.size, ckpt.n_outputs, cfg.chunk)
    done = store.peek(keys, overwrite)
    todo = [m for m in chosen if done[m.name] < n or n == 0]
    start = min((done[m.name] for m in todo), default=n)
    parts = Parts(store.folder, key_of("explain", {m.name: keys[m.name] for m in todo}), paths)
    sharded = world.distributed or parts.exists()
    result = ExplainResult(store.folder, n, start, geometry.grid)
    result.warnings += grid_warnings(chosen, geometry, ckpt)
    true = torch.tensor(rows["label"].map({c: i for i, c in enumerate(classes)}).to_numpy())
    data = _run_data(todo, settings, ckpt, pre, device, workers, run)
    source = ImageSource(rows["path"], pre, cache_bytes=0, workers=workers)
    prepared, notes = _prepare(model, todo, settings, cfg, source, device)
    result.warnings += notes
    names = [m.name for m in todo]

    def batches(order: np.ndarray):
        """``(rows, maps, logits, target, extras)`` per batch of ``order``, as numpy."""
        for images, idx in source.batches(order, cfg.batch_size):
            choose = _chooser(cfg, fixed, true, classes, idx)
            res, target = explain_batch(
                model, to_unit(images.to(device)), pre, names, choose, settings,
                data=data, prepared=prepared, geometry=geometry,
            )  # fmt: skip
            maps = {m: v.float().cpu().numpy() for m, v in res.maps.items()}
            extras = {c: v.cpu().numpy() for c, v in res.extras.items()}
            yield idx.numpy(), maps, res.logits.float().cpu().numpy(), target.cpu().numpy(), extras
            if progress is not None:
                progress(len(idx))

    if not sharded:
        store.resume(keys, {m.name: m.columns for m in chosen}, overwrite,
                     {m.name: m.column_types for m in chosen})  # fmt: skip
        if progress is not None and store.start:
            progress(store.start)
        for batch in batches(np.arange(store.start, n)):
            store.append(*batch)
    elif not _sharded(store, parts, world, names, batches, start, keys, chosen, overwrite):
        return None
    common = common_meta(cfg, fixed, n, geometry, classes, pre, manifest, ckpt_path, sha, ckpt)
    meta = {
        m.name: method_meta(m, settings[m.name], geometry, prepared, model) | common for m in todo
    }
    store.finish(rows, manifest, classes, meta)
    parts.clear()
    result.flagged, result.summaries = _checks(store.folder, chosen, settings)
    return result


def _sharded(
    store: MapStore, parts: Parts, world: World, names: list[str], batches, start: int,
    keys: dict[str, str], chosen: list[Method], overwrite: bool,
) -> bool:  # fmt: skip
    """This rank's shard into ``parts`` (per method ``map<j>``, then ``logits``, ``target``
    and ``x:<column>``); on rank 0, the parts merged into ``store`` in row order. Returns
    whether this rank goes on to finish the store (rank 0)."""

    def compute(rows: np.ndarray, sink) -> None:
        for idx, maps, logits, target, extras in batches(rows):
            own = {f"map{j}": maps[m] for j, m in enumerate(names)}
            sink.add(idx, **own, logits=logits, target=target,
                     **{f"x:{c}": v for c, v in extras.items()})  # fmt: skip

    if not run_sharded(parts, world.rank, world.size, compute, barrier, skip_below=start):
        return False
    store.resume(keys, {m.name: m.columns for m in chosen}, overwrite,
                     {m.name: m.column_types for m in chosen})  # fmt: skip
    for part in parts.stream(skip_below=start):
        keep = part["row"] >= store.start  # a block holding the first row still missing
        maps = {m: part[f"map{j}"][keep] for j, m in enumerate(names)}
        extras = {k[2:]: v[keep] for k, v in part.items() if k.startswith("x:")}
        store.append(part["row"][keep], maps, part["logits"][keep], part["target"][keep], extras)
    return True


def _refuse(model, methods: list[Method]) -> None:
    """``ValueError`` with the first method's reason when it cannot explain ``model``."""
    for m in methods:
        reason = m.refusal(model) if m.refusal is not None else None
        if reason:
            raise ValueError(reason)


def _run_data(
    methods: list[Method], settings: dict, ckpt: Checkpoint, pre, device: torch.device,
    workers: int, run: Path,
) -> dict[str, torch.Tensor]:  # fmt: skip
    """The run data the methods need with their settings (the mean face)."""
    if any(MEAN_FACE in m.run_data(settings[m.name]) for m in methods):
        return {MEAN_FACE: mean_face(ckpt, pre, device, workers, run)}
    return {}


def _checks(
    folder: Path, methods: list[Method], settings: dict
) -> tuple[dict[str, int], dict[str, str]]:
    """Per method with a check of its own, the rows of its stored index.csv it flags; per
    method with a summary, its line."""
    flagged, summaries = {}, {}
    for m in methods:
        if m.flagged is None and m.summary is None:
            continue
        index = pd.read_csv(folder / m.name / "index.csv")
        if m.flagged is not None:
            flagged[m.name] = m.flagged(index, settings[m.name])
        if m.summary is not None:
            summaries[m.name] = m.summary(index, settings[m.name])
    return flagged, summaries


def run(
    run_dir: str | Path,
    cfg: ExplainConfig,
    device: str = "auto",
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
    world: World | None = None,
) -> ExplainResult | None:
    """The explain stage: :func:`explain_run` on the resolved device, recorded in the run
    (by rank 0 under torchrun; ``None`` on the other ranks)."""
    from saliency.rundir import record, require_run
    from saliency.runtime import resolve_device

    run_dir = require_run(run_dir)
    res = explain_run(run_dir, cfg, resolve_device(device), workers, progress, overwrite, world)
    if res is not None:
        record(run_dir, f"explain:{cfg.split}", cfg.to_dict())
    return res


def lines(res: ExplainResult, cfg: ExplainConfig, seconds: float) -> list[str]:
    """What the command prints: what was done, warnings, each method's own check."""
    out = []
    if res.n and res.resumed_from == res.n:
        out.append(f"all {res.n} maps of each method were already there (same settings): kept")
    elif res.resumed_from:
        out.append(f"resumed after {res.resumed_from} of {res.n} images")
    out.append(
        f"{res.n} images x {len(cfg.methods)} method(s) ({', '.join(cfg.methods)}), grid "
        f"{res.grid[0]}x{res.grid[1]}, in {seconds:.1f} s -> {res.out}"
    )
    out += [f"{m}: {line}" for m, line in res.summaries.items()]
    out += [f"warning: {w}" for w in res.warnings]
    methods = [m for m in res.flagged if m in REGISTRY]
    settings = _settings(cfg, [REGISTRY[m] for m in methods])
    for m in methods:
        if res.flagged[m] and REGISTRY[m].flag_text is not None:
            out.append(f"warning: {REGISTRY[m].flag_text(res.flagged[m], settings[m])}")
    return out


def run_stage(cfg: ExplainConfig, ctx: StageContext) -> Result:
    """The stage contract: explain the context's run. The default methods are those of
    ``DEFAULT_METHODS`` that apply to its model (cam needs a CAM-ready one; a note says when
    it is left out); methods named otherwise are refused with the reason when they cannot."""
    import time

    from saliency.runs import applicable

    note = None
    if list(cfg.methods) == list(DEFAULT_METHODS):  # named ones are refused if they cannot run
        methods, note = applicable(ctx.run, list(cfg.methods))
        cfg = dataclasses.replace(cfg, methods=methods)
    start = time.perf_counter()
    step = ctx.progress(f"explain {cfg.split}", 0)
    res = run(ctx.run, cfg, ctx.device, ctx.workers, step, ctx.overwrite, ctx.world())
    if res is None:  # a rank other than 0: its shard is in the parts rank 0 merged
        return Result(None)
    head = [f"note: {note}"] if note else []
    return Result(res, head + lines(res, cfg, time.perf_counter() - start))
