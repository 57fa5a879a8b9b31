"""Per-image attribution shares of one method's stored maps: the mass of positive
attribution in each facial region, as a fraction of the image's positive mass.

Each image's exclusive region label map (the manifest's ``mask`` column, in the stored
image's coordinates) is brought onto the model's input grid by the preprocessing contract's
own stretch (:func:`saliency.models.preprocess.resize_labels`), where the maps live. Shares
are ratios within one map, so they need no normalization and none is applied. Maps are read
in chunks from the memory-mapped file; masks are decoded by a thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from saliency.analysis.share.mass import batch_region_mass, rank_accuracy
from saliency.data.imageio import ImageReadError, read_label_map
from saliency.data.manifest import read_manifest
from saliency.data.masks import match_masks
from saliency.data.regions import REGION_CODES, REGIONS
from saliency.data.synth.generate import planted_regions
from saliency.methods.store import absolute_paths, read_maps
from saliency.models.preprocess import resize_labels
from saliency.parts import Gathered, MemorySink, gather, key_of

META_COLUMNS = ["path", "label", "group", "target", "pred", "correct"]


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


def _read(path: Path, size: tuple[int, int]) -> tuple[np.ndarray | None, str]:
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
    shard: tuple[Path, int, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict] | None:
    """Per-image shares of one method's maps (``RUN/saliency/<split>/<method>``).

    Returns ``(per_image, skipped, meta)``. ``per_image`` has the index's path, label,
    group, target, pred and correct, ``positive_mass`` (map units), ``share_<region>``
    (fraction of the positive mass) and ``area_<region>`` (fraction of the pixels) for the
    six regions (masks from ``masks``, a manifest matched by image path, when given), and,
    when the data have a ground truth (:func:`planted_regions`), ``rank_accuracy`` and
    ``truth_area``. Images without a readable mask or without
    positive attribution are in ``skipped`` with the reason. ``shard``: ``(folder, rank,
    size)`` under torchrun: the ranks share the images, their parts go under ``folder`` and
    rank 0 merges (:func:`saliency.parts.gather`); ``None`` on the other ranks.
    """
    maps, index, meta = read_maps(folder)
    manifest = Path(meta["manifest"])
    mask_paths = _mask_paths(index, meta, masks)
    truth = planted_regions(manifest)
    truth_codes = torch.tensor([REGION_CODES[r] for r in truth or []])
    size = tuple(maps.shape[-2:])
    n_reg = len(REGIONS)

    def compute(todo: np.ndarray, sink) -> None:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for start in range(0, len(todo), chunk):
                rows = todo[start : start + chunk]
                read = list(pool.map(lambda r: _read(mask_paths[r], size), rows))
                ok = np.array([lab is not None for lab, _ in read], dtype=bool)
                b = len(rows)
                cols = {"positive_mass": np.full(b, np.nan), "share": np.full((b, n_reg), np.nan),
                        "area": np.full((b, n_reg), np.nan), "rank_accuracy": np.full(b, np.nan),
                        "truth_area": np.full(b, np.nan)}  # fmt: skip
                reason = np.array([why for _, why in read], dtype=object)
                if ok.any():
                    m = torch.from_numpy(np.asarray(maps[rows[ok]]))
                    lab = torch.from_numpy(np.stack([read[i][0] for i in np.flatnonzero(ok)]))
                    mass, area, total = batch_region_mass(m, lab)
                    cols["positive_mass"][ok] = total.numpy()
                    cols["share"][ok] = (mass / total.clamp_min(1e-300)[:, None]).numpy()
                    cols["area"][ok] = area.numpy()
                    reason[np.flatnonzero(ok)[~(total > 0).numpy()]] = "no positive attribution"
                    if truth:
                        gt = torch.isin(lab, truth_codes)
                        cols["rank_accuracy"][ok] = rank_accuracy(m, gt).numpy()
                        cols["truth_area"][ok] = gt.double().flatten(1).mean(1).numpy()
                sink.add(rows, reason=reason.astype(str), **cols)
                if progress is not None:
                    progress(b)

    ids = absolute_paths(index, meta)
    if shard is None:
        sink = MemorySink()
        compute(np.arange(len(index)), sink)
        got = Gathered(sink.arrays(len(index)))
    else:
        key = lambda: key_of("share", meta, [str(p) for p in mask_paths])  # noqa: E731
        got = gather(shard[0], key, ids, shard[1], shard[2], compute)
        if got is None:
            return None
    per, skip = _frames(got.arrays, index, truth)
    got.clear()
    meta = {**meta, "ground_truth": truth, "shares": "of positive attribution, per image"}
    return per, skip, meta


def _frames(
    arrays: dict[str, np.ndarray], index: pd.DataFrame, truth: list[str] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-image arrays of every row as the per-image and skipped tables, in row order."""
    info = index[[c for c in META_COLUMNS if c in index.columns]].reset_index(drop=True)
    good = arrays["reason"] == ""
    cols: dict[str, np.ndarray] = {"positive_mass": arrays["positive_mass"][good]}
    for k, r in enumerate(REGIONS):
        cols[f"share_{r}"] = arrays["share"][good, k]
        cols[f"area_{r}"] = arrays["area"][good, k]
    if truth:
        cols["rank_accuracy"] = arrays["rank_accuracy"][good]
        cols["truth_area"] = arrays["truth_area"][good]
    per = info[good].reset_index(drop=True).join(pd.DataFrame(cols))
    skip = info[~good].reset_index(drop=True)
    skip["reason"] = arrays["reason"][~good]
    return per, skip
