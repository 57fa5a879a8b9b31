"""The average stage: average maps and faces per selection, with optional contrasts.

Reads ``RUN/saliency/<maps split>/<method>/``; writes ``RUN/averages/<name>.npz`` (mean,
std, count, mean face, the normalization and selection; with a contrast, the difference,
t and family-wise p maps) and a figure per selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.analysis.average import (
    merge_partitions,
    partition_faces,
    partition_ids,
    partition_moments,
)
from saliency.analysis.names import OUTCOMES
from saliency.analysis.normalize import normalize_maps
from saliency.analysis.permutation import max_t_test
from saliency.analysis.selection import (
    Selection,
    check_class,
    check_outcome,
    default_groups,
    select,
)
from saliency.atomic import atomic_write
from saliency.configs.maps import AverageConfig
from saliency.data.cells import ALL, parse_group, present_groups
from saliency.methods.store import explained_methods, read_maps
from saliency.models.preprocess import Preprocessing
from saliency.rundir import averages_dir, eval_dir, record, saliency_dir
from saliency.stages.contract import Result, StageContext


@dataclass
class AverageResult:
    out: Path
    summary: pd.DataFrame  # one row per written selection
    messages: list[str] = field(default_factory=list)  # empty or too-small selections


REST = "rest"  # contrast value: every other image of the same outcome (and class)


def _contrast(
    sel: Selection, text: str, index: pd.DataFrame, classes: list[str], mask: np.ndarray
) -> tuple[str, np.ndarray]:
    """The other side of a contrast: its description and row mask. ``text`` is an outcome
    (correct, incorrect, all), a group or cell, or ``rest`` (the selection's complement
    within its outcome and class, so both sides are disjoint)."""
    if text == REST:
        everyone = select(index, replace(sel, group=ALL), classes)
        return f"the rest ({replace(sel, group=ALL).describe()})", everyone & ~mask
    if text in OUTCOMES:
        other = replace(sel, outcome=text)
    else:
        parse_group(text, present_groups(index), classes)  # raises with the valid values
        other = replace(sel, group=text)
    return other.describe(), select(index, other, classes)


def _write_npz(path: Path, **arrays) -> None:
    atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def run(cfg: AverageConfig) -> AverageResult:
    """Average every method's stored maps over each selection of ``cfg``: each outcome x
    group (with ``cfg.contrast`` when given), then each group's incorrect minus correct
    predictions (``contrast_incorrect``) and each evaluated cell minus the rest of its
    outcome (``contrast_cells``). Records ``cfg`` in ``RUN/config.json``."""
    faces: dict = {}
    parts = [_average(cfg, o, cfg.contrast, cfg.groups, faces) for o in cfg.outcomes]
    if cfg.contrast_incorrect:
        parts.append(_average(cfg, "incorrect", "correct", cfg.groups, faces))
    if cfg.contrast_cells:
        cells = _cells(cfg.run, cfg.maps_split)
        if cells:
            parts.append(_average(cfg, ALL, REST, cells, faces))
        else:
            note = (
                f"no evaluated cells for the {cfg.maps_split} split: no cell contrasts "
                f"(`saliency evaluate --run {cfg.run} --split {cfg.maps_split}` first)"
            )
            parts.append(AverageResult(averages_dir(cfg.run), pd.DataFrame(), [note]))
    record(cfg.run, "average", cfg.to_dict())
    frames = [p.summary for p in parts if len(p.summary)]
    summary = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return AverageResult(averages_dir(cfg.run), summary, [m for p in parts for m in p.messages])


def _cells(run: Path, split: str) -> list[str]:
    """The cells (subgroup x class) that the evaluation of ``split`` found."""
    path = eval_dir(run, split) / "group_accuracy.csv"
    if not path.is_file():
        return []
    table = pd.read_csv(path, keep_default_na=False)
    return list(table.loc[table["kind"] == "cell", "selection"])


def _average(
    cfg: AverageConfig, outcome: str, contrast: str | None, groups: list[str] | None,
    faces_cache: dict,
) -> AverageResult:  # fmt: skip
    """One outcome's averages over ``groups`` (default: all, every subgroup and cell)."""
    from saliency.viz.figures import average_figure, contrast_figure
    from saliency.viz.style import save_figure

    check_outcome(outcome)
    methods = explained_methods(cfg.run, cfg.maps_split, cfg.methods)
    out = averages_dir(cfg.run)
    result = AverageResult(out, pd.DataFrame())
    summary = []
    for method in methods:
        maps, index, meta = read_maps(saliency_dir(cfg.run, cfg.maps_split, method))
        classes = meta["classes"]
        label = check_class(cfg.label, classes)
        chosen = groups or default_groups(index, classes)
        for g in chosen:
            parse_group(g, present_groups(index), classes)
        ids = partition_ids(index)
        moments = partition_moments(maps, ids, cfg.norm)
        key = tuple(index["path"])
        if key not in faces_cache:
            root = Path(meta["manifest"]).parent
            pre = Preprocessing.from_dict(meta["preprocessing"])
            faces_cache[key] = partition_faces(
                [str(root / p) for p in index["path"]], ids, pre, cfg.workers
            )
        faces = faces_cache[key]
        for g in chosen:
            sel = Selection(outcome, g, label)
            mask = select(index, sel, classes)
            if not mask.any():
                result.messages.append(
                    f"{method}: empty selection ({sel.describe()}); nothing written"
                )
                continue
            mom, face = merge_partitions(np.unique(ids[mask]), moments, faces)
            name = sel.name(method, cfg.maps_split)
            arrays = {
                "mean": mom.mean,
                "std": mom.std,
                "count": mom.n,
                "mean_face": face,
                "normalization": cfg.norm,
                "method": method,
                "selection": sel.describe(),
                "units": meta["units"],
                "upsampling": (meta.get("upsampling") or {}).get("rule", "none (pixel maps)"),
            }
            title = f"{method}: {sel.describe()}"
            if meta.get("upsampling"):
                title += f" ({meta['upsampling']['rule']} upsampling)"
            row = {
                "method": method,
                "selection": name.split("_", 1)[1],
                "n": mom.n,
                "peak_yx": tuple(
                    int(v) for v in np.unravel_index(np.argmax(mom.mean), mom.mean.shape)
                ),
            }
            fig = None  # the preview: the average, or the contrast with its mean map
            if contrast:
                other, mask_b = _contrast(sel, contrast, index, classes, mask)
                if mask_b.sum() < 2 or mask.sum() < 2:
                    result.messages.append(
                        f"{method}: contrast {sel.describe()} vs {other} needs at "
                        f"least 2 images on each side ({mask.sum()} and {mask_b.sum()})"
                    )
                else:
                    a = normalize_maps(maps[np.flatnonzero(mask)], cfg.norm)
                    b = normalize_maps(maps[np.flatnonzero(mask_b)], cfg.norm)
                    res = max_t_test(a.reshape(len(a), -1), b.reshape(len(b), -1), cfg.permutations)
                    shape = mom.mean.shape
                    sig = (res.p_fwe < 0.05).reshape(shape)
                    arrays.update(
                        contrast=other,
                        difference=res.difference.reshape(shape),
                        t=res.t.reshape(shape),
                        p_fwe=res.p_fwe.reshape(shape),
                        contrast_count=int(len(b)),
                    )
                    name = f"{name}_vs_{contrast}"
                    fig = cfg.preview and contrast_figure(
                        face,
                        mom.mean,
                        res.difference.reshape(shape),
                        sig,
                        f"{method}: {sel.describe()} minus {other}",
                        len(a),
                        len(b),
                        cfg.norm,
                    )
                    row["significant_pixels"] = int(sig.sum())
            _write_npz(out / f"{name}.npz", **arrays)
            if cfg.preview:
                if fig is None:
                    fig = average_figure(face, mom.mean, mom.n, title, cfg.norm)
                save_figure(fig, out / f"{name}.png", tight=False)
            summary.append(row)
    result.summary = pd.DataFrame(summary)
    return result


def lines(res: AverageResult) -> list[str]:
    """What the command prints: messages, the written selections, the folder."""
    out = list(res.messages)
    if not len(res.summary):
        return out + ["nothing written: every selection was empty"]
    return out + [res.summary.to_string(index=False), f"-> {res.out}"]


def run_stage(cfg: AverageConfig, ctx: StageContext) -> Result:
    """The stage contract: ``cfg`` with the context's run folder and workers."""
    res = run(ctx.fill(cfg))
    return Result(res, lines(res), 0 if len(res.summary) else 1)
