"""Generate a planted-cue synthetic face data set: images, masks, manifest, synth.json.

Each image ``i`` draws from its own generator seeded by ``(seed, i)``, so the result does not
depend on the number of worker processes. Layout under ``out``::

    images/000000.png   RGB face
    masks/000000.png    region label map (0 background, 1 skin, 2 brows, 3 eyes, 4 nose,
                        5 mouth, 6 hair), exact and exclusive
    manifest.csv        path, label, group, split, x0..y67, mask, cue_class, tone, hair
                        style, fringe style, hairline height, long fringe (present and reach), cue
                        parameters, pose
    synth.json          generator config and ground truth
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.atomic import atomic_write_json
from saliency.data.cells import cell_name
from saliency.data.imageio import write_rgb
from saliency.data.manifest import landmark_frame, write_manifest
from saliency.data.regions import CODE_NAMES
from saliency.data.synth.config import CUE_PARAMETERS, SynthConfig
from saliency.data.synth.face import sample_face, with_long_fringe
from saliency.data.synth.render import render_face
from saliency.imsize import InputSize, hw

MANIFEST = "manifest.csv"
SYNTH_JSON = "synth.json"


@dataclass(frozen=True)
class Slot:
    """What image ``index`` is before it is drawn: its class, group and split."""

    index: int
    label: str
    group: str
    split: str


def assign_slots(cfg: SynthConfig) -> list[Slot]:
    """Balanced cells (group x class) and a split stratified by cell, both seeded."""
    rng = np.random.default_rng([cfg.seed, 0x5EED])
    cells = [(g, c) for g in cfg.groups for c in cfg.classes]
    order = rng.permutation(cfg.n)
    cell_of = np.empty(cfg.n, dtype=np.int64)
    cell_of[order] = np.arange(cfg.n) % len(cells)
    split = np.empty(cfg.n, dtype=object)
    f_train, f_val, _ = cfg.split_fractions
    for k in range(len(cells)):
        members = rng.permutation(np.flatnonzero(cell_of == k))
        n_train = int(round(f_train * members.size))
        n_val = int(round(f_val * members.size))
        split[members[:n_train]] = "train"
        split[members[n_train : n_train + n_val]] = "val"
        split[members[n_train + n_val :]] = "test"
    return [
        Slot(i, cells[cell_of[i]][1], cells[cell_of[i]][0], str(split[i])) for i in range(cfg.n)
    ]


def cue_class_of(cfg: SynthConfig, slot: Slot, rng: np.random.Generator) -> str:
    """The class whose cue the image carries (its own, except sometimes in cue cells)."""
    p_own = cfg.cue_cells.get(cell_name(slot.group, slot.label, list(cfg.classes)), 1.0)
    if rng.random() < p_own:
        return slot.label
    return next(c for c in cfg.classes if c != slot.label)


def render_slot(cfg: SynthConfig, slot: Slot) -> tuple[np.ndarray, np.ndarray, dict]:
    """Draw and render one image; returns image, label map and its manifest row."""
    rng = np.random.default_rng([cfg.seed, slot.index])
    cue_class = cue_class_of(cfg, slot, rng)
    face = sample_face(cfg, rng, slot.label, slot.group, cue_class)
    p_fringe = cfg.fringe.get(cell_name(slot.group, slot.label, list(cfg.classes)), 0.0)
    face = with_long_fringe(face, p_fringe, cfg.seed, slot.index)
    image, labels, landmarks = _middle(*render_face(face, max(hw(cfg.size)), rng), cfg.size)
    row = {
        "path": f"images/{slot.index:06d}.{cfg.image_format}",
        "label": slot.label,
        "group": slot.group,
        "split": slot.split,
        "mask": f"masks/{slot.index:06d}.png",
        "cue_class": cue_class,
        "tone": round(face.tone, 4),
        "hair_style": face.hair_style,
        "fringe": face.fringe,
        # how far the hairline lies above the eye line, canonical 128 px units
        "hairline_height": round(face.eye_y - face.top_y - face.hairline, 4),
        "long_fringe": face.long_fringe_reach > 0,
        "long_fringe_reach": round(face.long_fringe_reach, 4),
        **{
            str(p["param"]): round(float(getattr(face, str(p["param"]))), 4)
            for p in CUE_PARAMETERS.values()
        },
        "angle_deg": round(face.angle_deg, 3),
        "scale": round(face.scale, 4),
        "landmarks": landmarks,
    }
    return image, labels, row


def _middle(
    image: np.ndarray, labels: np.ndarray, landmarks: np.ndarray, size: InputSize
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The middle ``hw(size)`` of a square rendering (whole when square): image, labels and
    landmarks ``[68, 2]`` (x, y) moved by the same offset."""
    h, w = hw(size)
    top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    if (top, left) == (0, 0):
        return image, labels, landmarks
    moved = (landmarks - np.array([left, top], landmarks.dtype)).astype(landmarks.dtype)
    return image[top : top + h, left : left + w], labels[top : top + h, left : left + w], moved


def _render_chunk(args: tuple[SynthConfig, list[Slot], str]) -> list[dict]:
    cfg, slots, out = args
    rows = []
    for slot in slots:
        image, labels, row = render_slot(cfg, slot)
        write_rgb(Path(out) / row["path"], image)
        write_rgb(Path(out) / row["mask"], labels)
        rows.append(row)
    return rows


def _chunks(slots: list[Slot], size: int) -> Iterator[list[Slot]]:
    for start in range(0, len(slots), size):
        yield slots[start : start + size]


def generate(
    cfg: SynthConfig,
    out: str | os.PathLike,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Render the data set described by ``cfg`` into ``out``; returns the manifest frame.

    ``workers`` defaults to the number of CPUs (0 renders in this process). ``progress`` is
    called with the number of images finished after each chunk.
    """
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    slots = assign_slots(cfg)
    workers = (os.cpu_count() or 1) if workers is None else workers
    chunk = max(8, min(64, cfg.n // max(4 * workers, 1) or 8))
    jobs = [(cfg, part, str(out)) for part in _chunks(slots, chunk)]
    rows: list[dict] = []
    if workers <= 1 or len(jobs) == 1:
        results: Iterator[list[dict]] = map(_render_chunk, jobs)
        rows = _collect(results, progress)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            rows = _collect(pool.map(_render_chunk, jobs), progress)
    landmarks = np.stack([r.pop("landmarks") for r in rows])
    df = pd.concat([pd.DataFrame(rows), landmark_frame(landmarks)], axis=1)
    write_manifest(df, out / MANIFEST)
    counts = df.groupby(["group", "label", "split"]).size()
    atomic_write_json(
        out / SYNTH_JSON,
        {
            "generator": "saliency synth",
            "config": cfg.to_dict(),
            "classes": list(cfg.classes),
            "region_codes": {str(k): v for k, v in CODE_NAMES.items()},
            "ground_truth": cfg.ground_truth(),
            "counts": {"/".join(k): int(v) for k, v in counts.items()},
        },
    )
    return df


def planted_regions(manifest: str | os.PathLike) -> list[str] | None:
    """The regions that carry the class in a synthetic data set (its ``synth.json`` beside
    ``manifest``), strongest cue first; ``None`` when the data have no such ground truth."""
    info = Path(manifest).parent / SYNTH_JSON
    if not info.is_file():
        return None
    cued = json.loads(info.read_text()).get("config", {}).get("cues", {})
    ranked = sorted(((s, r) for r, s in cued.items() if s > 0), reverse=True)
    return [r for _, r in ranked] or None


def _collect(results: Iterator[list[dict]], progress: Callable[[int], None] | None) -> list[dict]:
    rows: list[dict] = []
    for part in results:
        rows.extend(part)
        if progress is not None:
            progress(len(part))
    return rows
