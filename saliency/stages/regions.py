"""``regions``: the exclusive region masks of every image of a manifest, from the best source.

Sources, best first (``auto`` takes the first one available): the generator's exact masks
(``synthetic``: the manifest's ``mask`` column), a BiSeNet face parser (``parsing``: needs
``--parser-weights``), 68-landmark polygons with a GrabCut hair estimate (``landmarks``).
Writes ``OUT/masks/<row>_<stem>.png`` (``uint8`` codes of :mod:`saliency.data.regions`, in
the image's own coordinates), ``OUT/manifest.csv`` (the input rows with ``mask`` and
``mask_source``), ``OUT/skipped.csv`` (a reason per row without masks) and a preview sheet.
The dilated, feathered masks for filling derive from these (:mod:`saliency.perturb.fill`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.atomic import atomic_write_text
from saliency.configs.prepare import RegionsConfig
from saliency.data.imageio import ImageReadError, read_label_map, read_rgb, write_rgb
from saliency.data.manifest import (
    Manifest,
    derived_name,
    read_manifest,
    relative_path,
    write_manifest,
)
from saliency.data.regions import REGION_CODES
from saliency.faces.names import SOURCES
from saliency.stages.contract import Result, StageContext

PARSE_BATCH = 16


@dataclass
class RegionsResult:
    n: int
    written: int
    source: str
    skipped: pd.DataFrame  # path, label, group, reason
    areas: pd.DataFrame  # mean area fraction of each region
    manifest: Path
    preview: Path | None
    seconds: float


def choose_source(m: Manifest, cfg: RegionsConfig) -> str:
    """The source to use; an unavailable one is an error that says what it needs."""
    if cfg.source not in SOURCES:
        raise ValueError(f"unknown --source {cfg.source!r}; valid: {', '.join(SOURCES)}")
    available = {
        "synthetic": "mask" in m.df.columns,
        "parsing": cfg.parser_weights is not None,
        "landmarks": m.has_landmarks,
    }
    needs = {
        "synthetic": "a 'mask' column (a synthetic data set)",
        "parsing": "--parser-weights PATH (face-parsing.PyTorch's 79999_iter.pth)",
        "landmarks": "68 landmark columns x0..y67 (run `saliency align`)",
    }
    if cfg.source != "auto":
        if not available[cfg.source]:
            raise ValueError(f"--source {cfg.source} needs {needs[cfg.source]}")
        return cfg.source
    for name in ("synthetic", "parsing", "landmarks"):
        if available[name]:
            return name
    raise ValueError(
        "no region source: the manifest has no masks and no 68 landmarks; run `saliency align` "
        "(landmarks) or pass --parser-weights PATH"
    )


def _masks(m: Manifest, source: str, cfg: RegionsConfig, progress) -> dict[int, np.ndarray | str]:
    """Label map ``uint8 [H, W]`` per row index, or the reason it has none."""
    out: dict[int, np.ndarray | str] = {}
    lms = m.landmarks()
    parser = None
    if source == "parsing":
        from saliency.faces.bisenet import load_parser

        parser = load_parser(cfg.parser_weights, cfg.device)
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        from saliency.faces.bisenet import parse_regions

        for shape in {img.shape for _, img in pending}:  # one batch per image size
            same = [(i, img) for i, img in pending if img.shape == shape]
            for k in range(0, len(same), PARSE_BATCH):
                chunk = same[k : k + PARSE_BATCH]
                labels = parse_regions(parser, np.stack([img for _, img in chunk]))
                for (i, _), lab in zip(chunk, labels.numpy(), strict=True):
                    out[i] = lab
                progress(len(chunk))
        pending.clear()

    for i, row in enumerate(m.df.itertuples(index=False)):
        try:
            image = read_rgb(m.abspath(row.path))
            if source == "synthetic":
                out[i] = read_label_map(m.abspath(row.mask))
            elif source == "parsing":
                pending.append((i, image))
                if len(pending) >= 4 * PARSE_BATCH:
                    flush()
                continue
            else:
                from saliency.faces.polygons import landmark_regions

                if not np.isfinite(lms[i]).all():
                    raise ValueError("no landmarks in this row")
                out[i] = landmark_regions(lms[i], image, hair=cfg.hair)
            if out[i].shape != image.shape[:2]:
                raise ValueError(f"mask {out[i].shape} and image {image.shape[:2]} differ")
        except (ImageReadError, ValueError) as exc:
            out[i] = str(exc)
        progress(1)
    if pending:
        flush()
    return out


def region_masks(
    cfg: RegionsConfig, progress: Callable[[int], None] | None = None
) -> RegionsResult:
    """Write the region masks of every row of ``cfg.manifest`` (see the module docstring)."""
    start = time.perf_counter()
    m = read_manifest(cfg.manifest)
    source = choose_source(m, cfg)
    out = Path(cfg.out)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    masks = _masks(m, source, cfg, progress or (lambda k: None))
    rows, skipped, areas = [], [], []
    for i, row in enumerate(m.df.to_dict("records")):
        labels = masks[i]
        if isinstance(labels, str):
            skipped.append({k: row[k] for k in ("path", "label", "group")} | {"reason": labels})
            continue
        name = derived_name(i, row["path"])
        write_rgb(out / "masks" / name, labels.astype(np.uint8))
        areas.append({r: float((labels == c).mean()) for r, c in REGION_CODES.items()})
        row["path"] = relative_path(m.abspath(row["path"]), out)
        rows.append(row | {"mask": f"masks/{name}", "mask_source": source})
    frame = pd.DataFrame(rows, columns=[*m.df.columns.drop("mask", errors="ignore"), "mask",
                                        "mask_source"])  # fmt: skip
    write_manifest(frame, out / "manifest.csv")
    skipped_df = pd.DataFrame(skipped, columns=["path", "label", "group", "reason"])
    atomic_write_text(out / "skipped.csv", skipped_df.to_csv(index=False))
    preview = None
    if cfg.preview and rows:
        from saliency.viz.previews import manifest_preview

        preview = manifest_preview(out / "manifest.csv", out / "regions_preview.png", cfg.preview)
    areas_df = pd.DataFrame(areas).mean().rename("mean_area").to_frame() if areas else None
    return RegionsResult(
        n=len(m),
        written=len(rows),
        source=source,
        skipped=skipped_df,
        areas=areas_df if areas_df is not None else pd.DataFrame(),
        manifest=out / "manifest.csv",
        preview=preview,
        seconds=time.perf_counter() - start,
    )


def lines(res: RegionsResult, cfg: RegionsConfig) -> list[str]:
    """What the command prints: counts, source, skip reasons, mean areas, preview."""
    out = [
        f"region masks for {res.written} of {res.n} images from {res.source} in "
        f"{res.seconds:.1f} s -> {res.manifest}"
    ]
    if len(res.skipped):
        out.append(f"skipped {len(res.skipped)} (reasons in {Path(cfg.out) / 'skipped.csv'}):")
        for reason, count in res.skipped["reason"].value_counts().items():
            out.append(f"  {count:6d}  {reason}")
    if len(res.areas):
        shares = ", ".join(f"{k} {v:.1%}" for k, v in res.areas["mean_area"].items())
        out.append(f"mean area share: {shares}")
    if res.preview:
        out.append(f"preview: {res.preview}")
    return out


def run_stage(cfg: RegionsConfig, ctx: StageContext) -> Result:
    """The stage contract: masks for the context's manifest into its ``out`` folder."""
    cfg = ctx.fill(cfg)
    res = region_masks(cfg, ctx.progress("regions", len(read_manifest(cfg.manifest))))
    return Result(res, lines(res, cfg))
