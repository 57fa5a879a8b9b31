"""The ablate stage: fill a region (``delete``) or everything but it (``keep``), re-classify.

Writes ``RUN/ablation/<region>_<fill>_<mode>/`` (per_image.csv, settings.json, summary.csv,
skipped.csv, distributions.png), ``RUN/ablation/ranking_<fill>_<mode>.csv`` and, with three
or more regions, ``RUN/ablation/cells_<fill>_<mode>.csv`` (region x cell effects judged
together, :mod:`saliency.analysis.ablation.cells`).

Each image is read at its own (aligned) size, where its region masks live. Every region's
dilated, feathered fill mask (:mod:`saliency.perturb.fill`) blends the fill into it; the
original and all variants then go through the run's own preprocessing (the resize and
normalization that evaluate used) and one batched forward pass, so all regions cost one pass
over the data. Decoding happens in DataLoader workers; the fills too on the CPU, and on the
model's device otherwise (:mod:`saliency.perturb.variants`; the same bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from saliency.configs.checks import AblationConfig
from saliency.data.cells import parse_group, present_groups
from saliency.data.manifest import relative_path
from saliency.distributed import World
from saliency.models import outputs
from saliency.models.checkpoint import file_sha256, load_model
from saliency.models.evaluate import run_rows
from saliency.models.preprocess import model_input
from saliency.parts import gather, key_of
from saliency.perturb.variants import (
    Variants,
    batch_inputs,
    collate,
    fill_place,
)
from saliency.rundir import ablation_dir, best_checkpoint
from saliency.runtime import full_float32
from saliency.stages.contract import Result, StageContext


def group_rows(rows: pd.DataFrame, groups: list[str], classes: list[str]) -> np.ndarray:
    """Rows in any of ``groups`` (subgroups, cells or ``all``); an unknown one raises
    ``ValueError`` listing the valid values."""
    present = present_groups(rows)
    keep = np.zeros(len(rows), dtype=bool)
    for g in groups:
        keep |= parse_group(g, present, classes).mask(rows)
    return keep


@full_float32
def ablate_run(
    run: str | Path,
    cfg: AblationConfig,
    device: torch.device,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    world: World | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]] | None:
    """Per-image results (one row per image and region) and skipped rows, plus classes.

    Columns: path, label, group, region, region_area, score_before/after (the true class's
    score, logit units), prob_before/after (its probability), pred_before/after,
    logit_before/after (the log-odds of ``classes[1]``: one logit, or ``z_1 - z_0``). Under
    torchrun (``world``) the ranks share the images and rank 0 merges (``None`` elsewhere).
    """
    world = world or World()
    ckpt_path = best_checkpoint(Path(run))
    model, pre, classes, ckpt = load_model(ckpt_path, device)
    rows, manifest = run_rows(ckpt, cfg.split, cfg.manifest, run)
    rows = rows[group_rows(rows, cfg.groups, classes)].reset_index(drop=True)
    if cfg.limit:
        rows = rows.head(cfg.limit)
    if "mask" not in rows.columns:
        raise ValueError(
            f"{manifest} has no 'mask' column: run `saliency regions` on it and pass the "
            "manifest it writes with --manifest (masks are matched to the images by path)"
        )
    root = manifest.parent  # image paths are absolute; masks relative unless from --manifest
    # an absolute mask path stays itself under `root /`; an empty cell means no mask
    masks = [root / p if p else Path() for p in rows["mask"].fillna("")]
    n_reg, n_out = len(cfg.regions), ckpt.n_outputs

    @torch.inference_mode()
    def compute(todo: np.ndarray, sink) -> None:
        loader = DataLoader(
            Variants([rows["path"][i] for i in todo], [masks[i] for i in todo], cfg, pre.size,
                     fill_place(cfg.fill_on, device)),
            batch_size=cfg.batch_size, num_workers=workers, collate_fn=collate,
            pin_memory=device.type == "cuda",
        )  # fmt: skip
        for batch in loader:
            idx, z, area = torch.zeros(0, dtype=torch.long), None, None
            if len(batch.raw_idx) + len(batch.done_idx):
                idx, inputs, area = batch_inputs(batch, cfg, device)
                z = model(model_input(inputs, pre)).float().view(len(idx), n_reg + 1, n_out)
            local = np.concatenate([idx.numpy(), [i for i, _ in batch.skipped]]).astype(int)
            b = len(local)
            logits = np.full((b, n_reg + 1, n_out), np.nan, np.float32)
            areas = np.zeros((b, n_reg), np.int64)
            if z is not None:
                logits[: len(idx)], areas[: len(idx)] = z.cpu().numpy(), area.cpu().numpy()
            reason = np.array([""] * len(idx) + [w for _, w in batch.skipped], dtype=str)
            order = np.argsort(local, kind="stable")
            sink.add(todo[local[order]], logits=logits[order], area=areas[order],
                     reason=reason[order])  # fmt: skip
            if progress is not None:
                progress(len(batch))

    key = lambda: key_of("ablate", file_sha256(ckpt_path), cfg.to_dict(), rows["path"].tolist())  # noqa: E731
    got = gather(ablation_dir(run), key, rows["path"].tolist(), world.rank,
                 world.size, compute)  # fmt: skip
    if got is None:
        return None
    per, skip = _frames(got.arrays, rows, manifest, classes, cfg.regions)
    got.clear()
    return per, skip, classes


def _frames(
    arrays: dict[str, np.ndarray], rows: pd.DataFrame, manifest: Path, classes: list[str],
    regions: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """The per-image arrays of every row (``logits [N, R + 1, C]``, ``area [N, R]``,
    ``reason [N]``: empty unless skipped) as the per-variant and skipped tables."""
    true = torch.tensor(rows["label"].map({c: k for k, c in enumerate(classes)}).to_numpy())
    ok = arrays["reason"] == ""
    idx = np.flatnonzero(ok)
    z = torch.from_numpy(arrays["logits"][ok]).flatten(0, 1)
    per = _per_variant([z], [torch.from_numpy(idx)], [torch.from_numpy(arrays["area"][ok])],
                       true, regions)  # fmt: skip
    meta = rows.reset_index(drop=True)[["path", "label", "group"]]
    meta["path"] = [relative_path(p, manifest.parent) for p in meta["path"]]  # as evaluate's
    per = meta.iloc[per["row"]].reset_index(drop=True).join(per.drop(columns="row"))
    for col in ("pred_before", "pred_after"):
        per[col] = np.asarray(classes, dtype=object)[per[col].to_numpy(int)]
    per["correct_before"] = per["pred_before"] == per["label"]
    per["correct_after"] = per["pred_after"] == per["label"]
    bad = np.flatnonzero(~ok)
    skip = pd.DataFrame({"path": meta["path"].iloc[bad].to_numpy(),
                         "label": rows["label"].iloc[bad].to_numpy(),
                         "group": rows["group"].iloc[bad].to_numpy(),
                         "reason": arrays["reason"][bad]},
                        columns=["path", "label", "group", "reason"])  # fmt: skip
    return per, skip


def _per_variant(
    logits: list[torch.Tensor],
    order: list[torch.Tensor],
    areas: list[torch.Tensor],
    true: torch.Tensor,
    regions: list[str],
) -> pd.DataFrame:
    """Batches' logits ``[b * (R + 1), C]`` (per image: original, then each region), row
    indices ``[b]`` and region areas ``[b, R]`` -> one row per (image, region), image-major."""
    cols = ["row", "region", "region_area", "score_before", "score_after", "prob_before",
            "prob_after", "pred_before", "pred_after", "logit_before", "logit_after"]  # fmt: skip
    if not logits:
        return pd.DataFrame(columns=cols)
    n_reg = len(regions)
    out = torch.cat(logits).cpu()  # the one wait for the device
    idx, area = torch.cat(order), torch.cat(areas).cpu()
    t = true[idx].view(-1, 1, 1).expand(-1, n_reg + 1, 1)  # the true class, per variant
    scores = outputs.class_scores(out).view(len(idx), n_reg + 1, -1).gather(2, t)[..., 0]
    probs = outputs.probabilities(out).view(len(idx), n_reg + 1, -1).gather(2, t)[..., 0]
    preds = outputs.predicted(out).view(len(idx), n_reg + 1)
    # the log-odds of classes[1]: the one logit z, or z_1 - z_0
    odds = (out[:, 0] if out.shape[1] == 1 else out[:, 1] - out[:, 0]).view(len(idx), -1)
    return pd.DataFrame({
        "row": idx.repeat_interleave(n_reg).numpy(),
        "region": np.tile(regions, len(idx)),
        "region_area": area.flatten().numpy(),
        "score_before": scores[:, :1].expand(-1, n_reg).flatten().numpy(),
        "score_after": scores[:, 1:].flatten().numpy(),
        "prob_before": probs[:, :1].expand(-1, n_reg).flatten().numpy(),
        "prob_after": probs[:, 1:].flatten().numpy(),
        "pred_before": preds[:, :1].expand(-1, n_reg).flatten().numpy(),
        "pred_after": preds[:, 1:].flatten().numpy(),
        "logit_before": odds[:, :1].expand(-1, n_reg).flatten().numpy(),
        "logit_after": odds[:, 1:].flatten().numpy(),
    })[cols]  # fmt: skip


@dataclass
class AblateResult:
    per_image: pd.DataFrame  # every stored image of the regions asked for
    new: pd.DataFrame  # the images ablated by this call
    skipped: pd.DataFrame
    rankings: dict[str, pd.DataFrame]  # group -> regions by effect
    empty_regions: list[str]  # zero area in every image: nothing was filled
    classes: list[str]


def run(
    run_dir: str | Path,
    cfg: AblationConfig,
    device: str = "auto",
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    world: World | None = None,
) -> AblateResult | None:
    """Ablate, merge with stored results of the same settings, summarize and write (rank 0
    under torchrun; ``None`` on the other ranks)."""
    from saliency.analysis.ablation.cells import per_cell
    from saliency.analysis.ablation.store import merged, result_dir, store
    from saliency.analysis.ablation.summary import ranking, summarize
    from saliency.atomic import atomic_write_text
    from saliency.models.checkpoint import file_sha256
    from saliency.rundir import record, require_run
    from saliency.runtime import resolve_device
    from saliency.viz.figures import distributions_figure
    from saliency.viz.style import save_figure

    run_dir = require_run(run_dir)
    got = ablate_run(run_dir, cfg, resolve_device(device), workers, progress, world)
    if got is None:  # a rank other than 0 under torchrun: rank 0 merged its shard
        return None
    new, skipped, classes = got
    settings = {
        "checkpoint_sha256": file_sha256(best_checkpoint(run_dir)),
        "split": cfg.split, "fill": cfg.fill, "mode": cfg.mode, "seed": cfg.seed,
        "protect": cfg.protect,
    }  # fmt: skip
    per = pd.concat(
        [merged(result_dir(run_dir, r, cfg.fill, cfg.mode), new[new["region"] == r], settings)
         for r in cfg.regions], ignore_index=True,
    )  # fmt: skip
    summary = summarize(per, classes, seed=cfg.seed)
    empty = []
    for region in cfg.regions:
        out = result_dir(run_dir, region, cfg.fill, cfg.mode)
        rows = per[per["region"] == region]
        store(out, rows, settings)
        atomic_write_text(
            out / "summary.csv",
            summary[summary["region"] == region].to_csv(index=False, float_format="%.5g"),
        )
        atomic_write_text(out / "skipped.csv", skipped.to_csv(index=False))
        save_figure(distributions_figure(rows, f"{region}: {cfg.mode} with {cfg.fill}"),
                    out / "distributions.png", tight=False)  # fmt: skip
        if (rows["region_area"] == 0).all():
            empty.append(region)
    rankings = {g: ranking(summary, g).assign(selection=g) for g in cfg.groups}
    table = pd.concat(rankings.values(), ignore_index=True)
    atomic_write_text(
        ablation_dir(run_dir) / f"ranking_{cfg.fill}_{cfg.mode}.csv",
        table.to_csv(index=False, float_format="%.5g"),
    )
    cells = per_cell(per, classes, cfg.regions, seed=cfg.seed)  # the matrix figure's
    if cells is not None:
        atomic_write_text(ablation_dir(run_dir) / f"cells_{cfg.fill}_{cfg.mode}.csv",
                          cells.to_csv(index=False, float_format="%.5g"))  # fmt: skip
    record(run_dir, f"ablate:{cfg.split}", cfg.to_dict())
    return AblateResult(per, new, skipped, rankings, empty, classes)


def ranking_lines(group: str, table: pd.DataFrame) -> list[str]:
    """One selection's ablation ranking (``ranking`` of the ablation summary), as text."""
    from saliency.analysis.familywise import describe
    from saliency.analysis.recovered import ablation_leader

    if not len(table):
        return [f"{group}: no images with these regions; nothing to rank"]
    effect = [
        f"{e:+.3f} [{-h:+.3f}, {-lo:+.3f}]"
        for e, lo, h in zip(
            table["effect"], table["prob_change_low"], table["prob_change_high"], strict=True
        )
    ]
    columns = ["region", "n", "effect", "excludes_zero", "p_fw", "accuracy_change", "flip_rate"]
    shown = table.assign(effect=effect)[columns]
    lead = ablation_leader(list(table["region"]), table["effect"], -table["prob_change_high"])
    return [
        f"{group}: regions by drop of the true class's probability ("
        f"{describe(int(table['family'].max()))})",
        shown.to_string(index=False, float_format=lambda v: f"{v:.3g}"),
        f"  ablation criterion met by: {lead or 'no region'}",
    ]


def lines(res: AblateResult, cfg: AblationConfig) -> list[str]:
    """What the command prints: empty regions, skipped images, rankings."""
    out = [f"warning: {r} has zero area in every image; nothing was filled"
           for r in res.empty_regions]  # fmt: skip
    n = res.new.drop_duplicates("path").shape[0]
    out.append(f"{n} images x {len(cfg.regions)} region(s), {cfg.mode} with {cfg.fill} fill")
    if len(res.skipped):
        out.append(f"skipped {len(res.skipped)} image(s) (reasons in skipped.csv)")
    for g, t in res.rankings.items():
        out += ranking_lines(g, t)
    return out


def run_stage(cfg: AblationConfig, ctx: StageContext) -> Result:
    """The stage contract: ablate ``cfg.split`` of the context's run."""
    step = ctx.progress(f"ablate {cfg.split}", 0)
    res = run(ctx.run, cfg, ctx.device, ctx.workers, step, ctx.world())
    return Result(res, lines(res, cfg) if res is not None else [])
