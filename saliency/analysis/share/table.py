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
    when the data have a ground truth (:func:`planted_regions`), ``rank_accuracy`` and
    ``truth_area``. Images without a readable mask or without
    positive attribution are in ``skipped`` with the reason.
    """
    maps, index, meta = read_maps(folder)
    manifest = Path(meta["manifest"])
    masks = _mask_paths(index, meta, masks)
    truth = planted_regions(manifest)
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
