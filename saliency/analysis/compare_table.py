"""The comparison table across runs (``saliency compare``): per run, and per recipe over seeds.

**Same recipe.** Two runs share a recipe when their checkpoints' training options
(``train_config``) are equal once the options in :data:`NOT_RECIPE` are dropped, and they
were trained on the same manifest *content* (the checkpoint's ``data.sha256``, not its path).
So runs that differ only in ``--seed`` (and in where they ran: folder, device, workers,
image cache) form one group; any other option (architecture, size, learning rate, epochs,
augmentation, ...) or other data makes another group. A manifest without a split has its
split drawn from the seed; such seeds still count as one recipe. An adopted model has no
training recipe: it is a group of its own.

**Best epoch.** The train and validation numbers are those of ``train_log.csv``'s row for the
epoch that ``checkpoints/best.pt`` records; a run without a training log (an adopted model)
has them empty (NaN).

Groups have the mean and sample sd (ddof=1) of every number over their runs; one run gives
an empty sd, and a number missing in one run leaves the group's mean empty too.
"""

from __future__ import annotations

import hashlib
import json
import math

import pandas as pd

#: training options that do not make a different recipe (the seed, and where a run ran);
#: the manifest's path is dropped too, its sha256 counts instead
NOT_RECIPE = ("seed", "out", "manifest", "workers", "device", "cache_bytes")

#: the numbers read from the training log at the best epoch
LOG_COLUMNS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")

#: per-run columns that are not averaged over a group (what the recipe fixes, or labels)
NOT_AVERAGED = ("run", "recipe", "seed", "arch", "output_stride", "parameters", "size",
                "grid", "epoch")  # fmt: skip


def recipe_key(train_config: dict | None, data_sha256: str | None) -> str | None:
    """A short hash naming a run's recipe (module docstring); None without a training
    recipe (an adopted model)."""
    if train_config is None:
        return None
    from saliency.models.recipe import TrainConfig
    from saliency.settings import defaults

    # a setting added since a run trained is its default there (the run trained with it)
    full = defaults(TrainConfig, drop_context=False)
    for key, value in train_config.items():
        full[key] = {**full[key], **value} if isinstance(full.get(key), dict) else value
    recipe = {k: v for k, v in full.items() if k not in NOT_RECIPE}
    recipe["data_sha256"] = data_sha256
    text = json.dumps(recipe, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def best_epoch_numbers(log: pd.DataFrame | None, epoch: int | None, where: str) -> dict:
    """Train and validation loss and accuracy at ``epoch`` of a training log (NaN for all
    without a log or an epoch). ``where`` names the log in the error for an epoch it lacks."""
    if log is None or epoch is None:
        return dict.fromkeys(LOG_COLUMNS, math.nan)
    missing = [c for c in ("epoch", *LOG_COLUMNS) if c not in log.columns]
    if missing:
        raise ValueError(f"{where} has no column {', '.join(missing)}; is it a training log?")
    rows = log[log["epoch"] == epoch]
    if rows.empty:
        raise ValueError(
            f"{where} has no row for epoch {epoch}, the epoch of checkpoints/best.pt: "
            "the log and the checkpoint are from different trainings"
        )
    row = rows.iloc[-1]
    return {c: float(row[c]) for c in LOG_COLUMNS}


def group_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per recipe, in order of first appearance: recipe, arch, n, seeds, runs, and
    ``<column>_mean`` / ``<column>_sd`` (sample sd) of every number of ``runs``.

    ``runs`` has the per-run columns of ``saliency compare``; a run with no recipe (None or
    empty) is a group of its own, named by its run."""
    numbers = [c for c in runs.columns
               if c not in NOT_AVERAGED and pd.api.types.is_numeric_dtype(runs[c])]  # fmt: skip
    keys = [r if isinstance(r, str) and r else f"run {run}"
            for r, run in zip(runs["recipe"], runs["run"], strict=True)]  # fmt: skip
    rows = []
    for key in dict.fromkeys(keys):
        members = runs[[k == key for k in keys]]
        row = {
            "recipe": key,
            "arch": members["arch"].iloc[0],
            "n": len(members),
            "seeds": " ".join("-" if pd.isna(s) else str(int(s)) for s in members["seed"]),
            "runs": " ".join(str(r) for r in members["run"]),
        }
        for c in numbers:
            values = members[c].astype(float)
            row[f"{c}_mean"] = values.mean(skipna=False)
            row[f"{c}_sd"] = values.std(ddof=1, skipna=False) if len(values) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _pct(v: float) -> str:
    return "-" if pd.isna(v) else f"{100 * v:.1f}"


def _num(v: float) -> str:
    return "-" if pd.isna(v) else f"{v:.3f}"


PAPER = (("train_accuracy", "train acc. (%)", _pct), ("val_accuracy", "val acc. (%)", _pct),
         ("accuracy", "{split} acc. (%)", _pct), ("train_loss", "train loss", _num),
         ("val_loss", "val loss", _num), ("loss", "{split} loss", _num),
         ("ms_per_image", "ms/image", _num))  # fmt: skip


def paper_table(runs: pd.DataFrame, groups: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """The table for Markdown and LaTeX (text columns): one row per run (kind ``run``), then
    one per recipe (kind ``group``) with ``mean ± sd``; accuracies in %."""
    rows = []
    for _, r in runs.iterrows():
        cells = {title.format(split=split): fmt(r[col]) for col, title, fmt in PAPER}
        rows.append({"run": str(r["run"]), "kind": "run", "n": 1} | cells)
    for _, g in groups.iterrows():
        cells = {}
        for col, title, fmt in PAPER:
            mean, sd = g[f"{col}_mean"], g[f"{col}_sd"]
            cells[title.format(split=split)] = (
                fmt(mean) if pd.isna(sd) or pd.isna(mean) else f"{fmt(mean)} ± {fmt(sd)}"
            )
        name = g["recipe"] if g["recipe"].startswith("run ") else f"recipe {g['recipe']}"
        rows.append({"run": name, "kind": "group", "n": int(g["n"])} | cells)
    return pd.DataFrame(rows)
