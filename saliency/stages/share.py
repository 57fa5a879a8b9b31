"""The share stage: how much of each method's attribution falls in each facial region.

Reads ``RUN/saliency/<maps split>/<method>/`` and the region masks; writes
``RUN/share/<method>_<maps split>/`` (per_image.csv, skipped.csv, summary.csv, truth.csv
on synthetic data, an enrichment figure per split). The per-image shares are
:func:`saliency.analysis.share.table.share_table`'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from saliency.analysis.recovered import judged
from saliency.analysis.selection import region_selections
from saliency.analysis.share.summary import ShareTables, summarize_shares
from saliency.analysis.share.table import share_table
from saliency.atomic import atomic_write_text
from saliency.configs.maps import ShareConfig
from saliency.data.cells import present_groups
from saliency.distributed import World
from saliency.methods.store import explained_methods
from saliency.rundir import record, require_run, saliency_dir, share_dir
from saliency.stages.contract import Result, StageContext


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
    cfg: ShareConfig,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    world: World | None = None,
) -> ShareResult | None:
    """Per-image shares and their summaries for every method; ``progress(method, n)``
    returns the callback that counts that method's images. Under torchrun (``world``) the
    ranks share each method's images and rank 0 writes (``None`` on the other ranks)."""
    world = world or World()
    from saliency.viz.figures import enrichment_figure
    from saliency.viz.style import save_figure

    run_dir = require_run(cfg.run)
    result = ShareResult()
    for method in explained_methods(run_dir, cfg.maps_split, cfg.methods):
        folder = saliency_dir(run_dir, cfg.maps_split, method)
        n = json.loads((folder / "meta.json").read_text())["shape"][0]
        step = progress(method, n) if progress is not None else None
        out = share_dir(run_dir, method, cfg.maps_split)
        got = share_table(folder, workers=cfg.workers, progress=step, masks=cfg.manifest,
                          shard=(out, world.rank, world.size))  # fmt: skip
        if got is None:  # rank 0 merges this rank's shard and writes
            continue
        per, skipped, meta = got
        classes = meta["classes"]
        sels = region_selections(per, classes, cfg.outcomes, cfg.groups, cfg.label)
        tables = summarize_shares(per, classes, sels, meta["ground_truth"], cfg.bootstrap, cfg.seed)
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
    if not world.main:
        return None
    record(run_dir, "share", cfg.to_dict())
    return result


def _interval(e, lo, hi) -> str:
    return f"{e:.3g} [{lo:.3g}, {hi:.3g}]"


def lines(res: ShareResult) -> list[str]:
    """What the command prints, method by method: the first selection's shares and
    enrichment with intervals, the planted region's rank accuracy, where the files are."""
    out = []
    for m in res.methods:
        out += [f"{m.method}: {line}" for line in m.tables.messages]
        if m.skipped:
            out.append(f"{m.method}: skipped {m.skipped} image(s) (reasons in "
                       f"{m.out / 'skipped.csv'})")  # fmt: skip
        out += _method_lines(m.method, m.tables, m.judged, m.out)
        if not len(m.tables.summary):
            out.append(f"{m.method}: no image has positive attribution to share; nothing "
                       "summarized")  # fmt: skip
    return out


def _method_lines(method: str, tables: ShareTables, can: tuple[bool, str], out: Path) -> list:
    s = tables.summary
    if not len(s):
        return []
    first = s[(s["split"] == s["split"].iloc[0]) & (s["selection"] == s["selection"].iloc[0])]
    split, sel = first["split"].iloc[0], first["selection"].iloc[0]
    text = [f"{method}: {sel}, {split} predictions (n = {first['n'].iloc[0]}), 95% intervals"]
    shown = first.assign(
        share=[_interval(*v) for v in first[["share", "share_low", "share_high"]].to_numpy()],
        enrichment=[
            _interval(*v)
            for v in first[["enrichment", "enrichment_low", "enrichment_high"]].to_numpy()
        ],
        leader=["<- highest enrichment" if v else "" for v in first["share_leader"]],
    ).sort_values("enrichment_low", ascending=False)
    text.append(
        shown[["region", "share", "area", "enrichment", "leader"]].to_string(
            index=False, float_format=lambda v: f"{v:.3f}"
        )
    )
    if not can[0]:
        text.append(f"  {can[1]}: no recovery is claimed")
    else:  # enrichment is description; the verdict needs the null (analysis.recovered)
        text.append(
            "  shares and enrichment describe the maps; whether a region is recovered needs the "
            "null model: `saliency null`, then `saliency validate` (or `saliency agreement`)"
        )
    t = tables.truth
    if len(t):
        r = t[(t["split"] == split) & (t["selection"] == sel)].iloc[0]
        ra = _interval(r["rank_accuracy"], r["rank_accuracy_low"], r["rank_accuracy_high"])
        ts = _interval(r["truth_share"], r["truth_share_low"], r["truth_share_high"])
        text.append(f"  planted {r['truth']}: rank accuracy {ra} (chance {r['chance']:.3f}), "
                    f"share {ts}")  # fmt: skip
    return text + [f"  -> {out}"]


def run_stage(cfg: ShareConfig, ctx: StageContext) -> Result:
    """The stage contract: the shares of the context's run (a progress bar per method)."""
    res = run(ctx.fill(cfg), lambda method, n: ctx.progress(f"share {method}", n), ctx.world())
    return Result(res, lines(res) if res is not None else [])
