"""``align``: detect, landmark and align every image of a manifest to the canonical crop.

Writes ``OUT/images/<row>_<stem>.png`` (and ``OUT/masks/`` when the manifest has region
masks, warped with nearest neighbour), ``OUT/manifest.csv`` with landmarks in aligned
coordinates, ``OUT/skipped.csv`` (one reason per row that could not be aligned) and
``OUT/align_rates.csv``: detection and skip rates per subgroup, class and cell with Wilson
intervals, because a detector that fails more often for some faces biases every later number.
Processed plus skipped rows always equal the input rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.atomic import atomic_write_json, atomic_write_text
from saliency.binomial import wilson
from saliency.configs.prepare import AlignConfig
from saliency.data.cells import standard_selections
from saliency.data.imageio import ImageReadError, read_label_map, read_rgb, write_rgb
from saliency.data.manifest import (
    LANDMARK_COLUMNS,
    derived_name,
    landmark_frame,
    read_manifest,
    write_manifest,
)
from saliency.faces.align import MAX_RESIDUAL, fit_residual, transform_points, warp
from saliency.faces.landmarks import FIVE, five_points, make_backend
from saliency.stages.contract import Result, StageContext

FIVE_COLUMNS = [f"{n}_{a}" for n in FIVE for a in ("x", "y")]


@dataclass
class AlignResult:
    n: int
    aligned: int
    skipped: pd.DataFrame  # path, label, group, reason
    rates: pd.DataFrame
    manifest: Path
    seconds: float
    several: int = 0  # images with more than one face (kept: the largest)
    notes: list[str] = field(default_factory=list)


_BACKEND = None  # one per worker process (dlib objects cannot be pickled)


def _start(name: str, options: dict) -> None:
    global _BACKEND
    _BACKEND = make_backend(name, **options)


def _align_one(job: tuple[int, dict, str, str, AlignConfig]) -> dict:
    """Align one row; returns its output columns, or ``reason`` when it is skipped."""
    i, row, src, mask_src, cfg = job
    try:
        image = read_rgb(src)
    except ImageReadError as exc:
        return {"reason": f"unreadable: {exc}"}
    faces = _BACKEND.faces(image, pd.Series(row))
    if not faces:
        return {"reason": "no face found" if cfg.backend != "columns" else "no landmarks"}
    if len(faces) > 1 and cfg.multiple == "skip":
        return {"reason": f"several faces ({len(faces)}); --multiple skip"}
    face = max(faces, key=lambda f: f.area)
    if not np.isfinite(face.landmarks).all():
        return {"reason": "landmark failure: non-finite points"}
    matrix, misfit = fit_residual(face.landmarks, cfg.size)
    if misfit > MAX_RESIDUAL:
        return {"reason": f"landmark failure: 5-point misfit {misfit:.2f} inter-ocular distances"}
    name = derived_name(i, row["path"])
    write_rgb(Path(cfg.out) / "images" / name, warp(image, matrix, cfg.size))
    out = {
        "path": f"images/{name}",
        "landmarks": transform_points(face.landmarks, matrix),
        "faces_found": len(faces),
        "detector_score": face.score,
        "fit_misfit": misfit,
    }
    if mask_src:
        labels = warp(read_label_map(mask_src), matrix, cfg.size, labels=True)
        write_rgb(Path(cfg.out) / "masks" / name, labels)
        out["mask"] = f"masks/{name}"
    return out


def _results(jobs: list, cfg: AlignConfig) -> Iterator[dict]:
    if cfg.workers <= 0 or len(jobs) < 2:
        _start(cfg.backend, cfg.backend_options())
        yield from map(_align_one, jobs)
        return
    with ProcessPoolExecutor(
        cfg.workers, initializer=_start, initargs=(cfg.backend, cfg.backend_options())
    ) as pool:
        yield from pool.map(_align_one, jobs, chunksize=8)


def skip_rates(df: pd.DataFrame, aligned: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """n, aligned, skipped, skip rate with a 95% Wilson interval: all, per subgroup, class
    and cell (``group``/``label`` columns of the input rows)."""
    rows = []
    for name, mask in standard_selections(df, classes):
        n, k = int(mask.sum()), int((~aligned[mask]).sum())
        lo, hi = wilson(k, n)
        rows.append({"selection": name, "n": n, "aligned": n - k, "skipped": k,
                     "skip_rate": k / n if n else np.nan, "ci_low": lo, "ci_high": hi})  # fmt: skip
    return pd.DataFrame(rows)


def align_manifest(cfg: AlignConfig, progress: Callable[[int], None] | None = None) -> AlignResult:
    """Align every row of ``cfg.manifest`` into ``cfg.out`` (see the module docstring)."""
    start = time.perf_counter()
    m = read_manifest(cfg.manifest)
    make_backend(cfg.backend, **cfg.backend_options())  # fail here, once, on a missing model
    out = Path(cfg.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    has_masks = "mask" in m.df.columns
    if has_masks:
        (out / "masks").mkdir(exist_ok=True)
    records = m.df.to_dict("records")
    jobs = [
        (i, r, str(m.abspath(r["path"])), str(m.abspath(r["mask"])) if has_masks else "", cfg)
        for i, r in enumerate(records)
    ]
    kept, skipped = [], []
    for i, res in enumerate(_results(jobs, cfg)):
        row = records[i]
        if "reason" in res:
            skipped.append(
                {k: row[k] for k in ("path", "label", "group")} | {"reason": res["reason"]}
            )
        else:
            kept.append((i, res))
        if progress is not None:
            progress(1)
    aligned = np.zeros(len(records), bool)
    aligned[[i for i, _ in kept]] = True
    frame = _aligned_frame(m.df, kept, m.root)
    write_manifest(frame, out / "manifest.csv")
    skipped_df = pd.DataFrame(skipped, columns=["path", "label", "group", "reason"])
    atomic_write_text(out / "skipped.csv", skipped_df.to_csv(index=False))
    rates = skip_rates(m.df, aligned, m.classes)
    atomic_write_text(out / "align_rates.csv", rates.to_csv(index=False, float_format="%.4f"))
    result = AlignResult(
        n=len(records), aligned=len(kept), skipped=skipped_df, rates=rates,
        manifest=out / "manifest.csv", seconds=time.perf_counter() - start,
        several=int(sum(res["faces_found"] > 1 for _, res in kept)),
    )  # fmt: skip
    summary = asdict(cfg) | {"n": result.n, "aligned": result.aligned, "several": result.several}
    atomic_write_json(out / "align.json", summary)
    return result


def _aligned_frame(df: pd.DataFrame, kept: list, root: Path) -> pd.DataFrame:
    """The output manifest: input metadata, new paths, aligned landmarks, provenance."""
    if not kept:
        return pd.DataFrame(columns=["path", "label", "group", "split"])
    idx = [i for i, _ in kept]
    drop = [c for c in (*LANDMARK_COLUMNS, *FIVE_COLUMNS, "mask") if c in df.columns]
    frame = df.iloc[idx].drop(columns=drop).reset_index(drop=True)
    frame["source_path"] = [str((root / p).resolve()) for p in frame["path"]]
    frame["path"] = [res["path"] for _, res in kept]
    if all("mask" in res for _, res in kept):
        frame["mask"] = [res["mask"] for _, res in kept]
    for key in ("faces_found", "detector_score", "fit_misfit"):
        frame[key] = [res[key] for _, res in kept]
    points = [res["landmarks"] for _, res in kept]
    if all(len(p) == 68 for p in points):
        return pd.concat([frame, landmark_frame(np.stack(points))], axis=1)
    five = np.stack([p if len(p) == 5 else five_points(p) for p in points]).reshape(len(points), -1)
    return pd.concat([frame, pd.DataFrame(five, columns=FIVE_COLUMNS)], axis=1)


def lines(res: AlignResult, cfg: AlignConfig) -> list[str]:
    """What the command prints: counts, speed, skip reasons, skip rate per cell."""
    out = [
        f"aligned {res.aligned} of {res.n} images ({cfg.backend}, {cfg.size} px) in "
        f"{res.seconds:.1f} s ({res.n / max(res.seconds, 1e-9):.1f} img/s) -> {res.manifest}"
    ]
    if res.several:
        out.append(f"{res.several} image(s) had several faces: kept the largest (faces_found "
                   "column)")  # fmt: skip
    if len(res.skipped):
        out.append(f"skipped {len(res.skipped)} (reasons in {Path(cfg.out) / 'skipped.csv'}):")
        for reason, count in res.skipped["reason"].str.split(":").str[0].value_counts().items():
            out.append(f"  {count:6d}  {reason}")
    table = res.rates.copy()
    table["skip_rate"] = [
        f"{r:6.1%} [{lo:.1%}, {hi:.1%}]" if r == r else "-"
        for r, lo, hi in zip(table["skip_rate"], table["ci_low"], table["ci_high"], strict=True)
    ]
    return out + [table[["selection", "n", "aligned", "skip_rate"]].to_string(index=False)]


def run_stage(cfg: AlignConfig, ctx: StageContext) -> Result:
    """The stage contract: align the context's manifest into its ``out`` folder."""
    from saliency.data.manifest import read_manifest

    cfg = ctx.fill(cfg)
    res = align_manifest(cfg, ctx.progress("align", len(read_manifest(cfg.manifest))))
    return Result(res, lines(res, cfg))
