"""The share stage: how much of each method's attribution falls in each facial region.

Reads ``RUN/saliency/<maps split>/<method>/`` and the region masks; writes
``RUN/share/<method>_<maps split>/`` (per_image.csv, skipped.csv, summary.csv, truth.csv
on synthetic data, an enrichment figure per split).

Each image's exclusive region label map (the manifest's ``mask`` column, in the stored
image's coordinates) is brought onto the model's input grid by the preprocessing contract's
own stretch (:func:`saliency.models.preprocess.resize_labels`), where the maps live. Shares
are ratios within one map, so they need no normalization and none is applied. Maps are read
in chunks from the memory-mapped file; masks are decoded by a thread pool.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from saliency.analysis.recovered import judged
from saliency.analysis.selection import region_selections
from saliency.analysis.share.mass import batch_region_mass, rank_accuracy
from saliency.analysis.share.summary import ShareTables, summarize_shares
from saliency.atomic import atomic_write_text
from saliency.data.cells import present_groups
from saliency.data.imageio import ImageReadError, read_label_map
from saliency.data.manifest import read_manifest
from saliency.data.masks import match_masks
from saliency.data.regions import REGION_CODES, REGIONS
from saliency.methods.store import absolute_paths, explained_methods, read_maps
from saliency.models.preprocess import resize_labels
from saliency.rundir import record, require_run, saliency_dir, share_dir

META_COLUMNS = ["path", "label", "group", "target", "pred", "correct"]


def ground_truth(manifest: Path) -> list[str] | None:
    """The regions that carry the class in a synthetic data set (``synth.json`` beside the
    manifest), strongest first; ``None`` when the data have no such ground truth."""
    info = manifest.parent / "synth.json"
    if not info.is_file():
        return None
    cued = json.loads(info.read_text()).get("config", {}).get("cues", {})
    ranked = sorted(((s, r) for r, s in cued.items() if s > 0), reverse=True)
    return [r for _, r in ranked] or None


def _mask_paths(index: pd.DataFrame, meta: dict, masks: str | Path | None) -> list[Path]:
    """Each explained image's mask: from ``masks`` (or the manifest explain was given for
    masks) matched by path, else the maps' own manifest."""
    masks = masks or meta.get("mask_manifest")
    if masks:
        return [Path(p) if p else Path() for p in match_masks(absolute_paths(index, meta), masks)]
    manifest = Path(meta["manifest"])
    m = read_manifest(manifest)
    if "mask" not in m.df.columns:
        raise ValueError(
            f"{manifest} has no 'mask' column: run `saliency regions` on it and pass the "
            "manifest it writes with --manifest (masks are matched to the images by path)"
        )
    # by resolved absolute path: a manifest may list its images relative to itself or not
    paths = [str(m.abspath(p).resolve()) for p in m.df["path"].astype(str)]
    mask_of = dict(zip(paths, m.df["mask"].fillna("").astype(str), strict=True))
    wanted = absolute_paths(index, meta)
    missing = [p for p, w in zip(index["path"], wanted, strict=True) if w not in mask_of]
    if missing:
        raise ValueError(f"{len(missing)} explained image(s) not in {manifest}, e.g. {missing[0]}")
    return [m.abspath(mask_of[w]) if mask_of[w] else Path() for w in wanted]


def _read(path: Path, size: int) -> tuple[np.ndarray | None, str]:
    if path == Path():
        return None, "no region mask"
    try:
        return resize_labels(read_label_map(path), size), ""
    except ImageReadError as exc:
        return None, str(exc)


def share_table(
    folder: str | Path,
    chunk: int = 256,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    masks: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Per-image shares of one method's maps (``RUN/saliency/<split>/<method>``).

    Returns ``(per_image, skipped, meta)``. ``per_image`` has the index's path, label,
    group, target, pred and correct, ``positive_mass`` (map units), ``share_<region>``
    (fraction of the positive mass) and ``area_<region>`` (fraction of the pixels) for the
    six regions (masks from ``masks``, a manifest matched by image path, when given), and,
    when the data have a ground truth (:func:`ground_truth`), ``rank_accuracy`` and
    ``truth_area``. Images without a readable mask or without
    positive attribution are in ``skipped`` with the reason.
    """
    maps, index, meta = read_maps(folder)
    manifest = Path(meta["manifest"])
    masks = _mask_paths(index, meta, masks)
    truth = ground_truth(manifest)
    truth_codes = torch.tensor([REGION_CODES[r] for r in truth or []])
    size = maps.shape[-1]
    frames, skipped = [], []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(index), chunk):
            stop = min(start + chunk, len(index))
            read = list(pool.map(lambda p: _read(p, size), masks[start:stop]))
            ok = [i for i, (lab, _) in enumerate(read) if lab is not None]
            skipped += [(start + i, why) for i, (lab, why) in enumerate(read) if lab is None]
            if ok:
                m = torch.from_numpy(np.asarray(maps[start:stop])[ok])
                lab = torch.from_numpy(np.stack([read[i][0] for i in ok]))
                mass, area, total = batch_region_mass(m, lab)
                rows = np.asarray(ok) + start
                good = (total > 0).numpy()
                skipped += [(r, "no positive attribution") for r in rows[~good]]
                cols = {"row": rows, "positive_mass": total.numpy()}
                share = (mass / total.clamp_min(1e-300)[:, None]).numpy()
                for k, r in enumerate(REGIONS):
                    cols[f"share_{r}"] = share[:, k]
                    cols[f"area_{r}"] = area[:, k].numpy()
                if truth:
                    gt = torch.isin(lab, truth_codes)
                    cols["rank_accuracy"] = rank_accuracy(m, gt).numpy()
                    cols["truth_area"] = gt.double().flatten(1).mean(1).numpy()
                frames.append(pd.DataFrame(cols)[good])
            if progress is not None:
                progress(stop - start)
    per = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"row": []})
    info = index[[c for c in META_COLUMNS if c in index.columns]].reset_index(drop=True)
    per = info.iloc[per["row"].astype(int)].reset_index(drop=True).join(per.drop(columns="row"))
    skip = info.iloc[[r for r, _ in skipped]].reset_index(drop=True)
    skip["reason"] = [why for _, why in skipped]
    meta = {**meta, "ground_truth": truth, "shares": "of positive attribution, per image"}
    return per, skip, meta


@dataclass
class ShareConfig:
    run: Path
    method: list[str] | None = None  # default: every explained method
    split: list[str] | None = None  # which predictions; default all, correct and incorrect
    group: list[str] | None = None  # default: all, every subgroup, class and cell
    label: str | None = None
    maps_split: str = "test"
    bootstrap: int = 2000
    seed: int = 0
    workers: int = 2
    manifest: Path | None = None  # region masks for the explained images, matched by path

    def to_dict(self) -> dict:
        return {k: str(v) for k, v in asdict(self).items()}  # as recorded before issue 17


@dataclass
class MethodShares:
    method: str
    out: Path
    tables: ShareTables
    skipped: int
    judged: tuple[bool, str]


@dataclass
class ShareResult:
    methods: list[MethodShares] = field(default_factory=list)


def run(
    cfg: ShareConfig, progress: Callable[[str, int], Callable[[int], None]] | None = None
) -> ShareResult:
    """Per-image shares and their summaries for every method; ``progress(method, n)``
    returns the callback that counts that method's images."""
    from saliency.viz.figures import enrichment_figure
    from saliency.viz.style import save_figure

    run_dir = require_run(cfg.run)
    result = ShareResult()
    for method in explained_methods(run_dir, cfg.maps_split, cfg.method):
        folder = saliency_dir(run_dir, cfg.maps_split, method)
        n = json.loads((folder / "meta.json").read_text())["shape"][0]
        step = progress(method, n) if progress is not None else None
        per, skipped, meta = share_table(
            folder, workers=cfg.workers, progress=step, masks=cfg.manifest
        )
        classes = meta["classes"]
        sels = region_selections(per, classes, cfg.split, cfg.group, cfg.label)
        tables = summarize_shares(per, classes, sels, meta["ground_truth"], cfg.bootstrap, cfg.seed)
        out = share_dir(run_dir, method, cfg.maps_split)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "per_image.csv", per.to_csv(index=False, float_format="%.6g"))
        atomic_write_text(out / "skipped.csv", skipped.to_csv(index=False))
        for name in ("summary", "truth"):
            table = getattr(tables, name)
            if len(table):
                atomic_write_text(
                    out / f"{name}.csv", table.to_csv(index=False, float_format="%.5g")
                )
            else:
                (out / f"{name}.csv").unlink(missing_ok=True)
        for split, t in tables.summary.groupby("split", sort=False) if len(tables.summary) else []:
            shown = ["all", *present_groups(per), *classes]  # cells: in summary.csv
            fig = enrichment_figure(t, f"{method}: enrichment, {split} predictions", shown)
            save_figure(fig, out / f"enrichment_{split}.png", tight=False)
        result.methods.append(MethodShares(method, out, tables, len(skipped), judged(meta)))
    record(run_dir, "share", cfg.to_dict())
    return result
