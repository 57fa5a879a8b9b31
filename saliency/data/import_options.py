"""The importers' options (torch- and pandas-free: the command line builds flags from them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from saliency.settings import setting


def parse_map(text: str | None) -> dict[str, str] | None:
    """``"0=male,1=female"`` -> ``{"0": "male", "1": "female"}``; None stays None."""
    if not text:
        return None
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"map entry {item!r} must look like FROM=TO, e.g. 0=male")
        out[key.strip()] = value.strip()
    return out


def _pair(text: str) -> tuple[str, str]:
    """``"0=male"`` -> ``("0", "male")``."""
    ((key, value),) = parse_map(text).items()
    return key, value


@dataclass
class ImportOptions:
    """Options shared by the importers; ``None`` means the format's default."""

    path_col: str | None = setting(None, help="source column holding the image path")
    label_col: str | None = setting(None, help="source column holding the label")
    group_col: str | None = setting(None, help="source column holding the group")
    split_col: str | None = setting(None, help="source column holding the split")
    label_map: dict[str, str] | None = setting(
        None, help="label values to class names, e.g. 0=male,1=female", parse=_pair,
        metavar="FROM=TO",
    )  # fmt: skip
    group_map: dict[str, str] | None = setting(
        None, help="group values to group names, e.g. B=AA,W=C (unmapped values are skipped)",
        parse=_pair, metavar="FROM=TO",
    )  # fmt: skip
    split_map: dict[str, str] | None = setting(
        None, help="split values to train/val/test, e.g. val=test,Training=train", parse=_pair,
        metavar="FROM=TO",
    )  # fmt: skip
    images: Path | None = setting(None, help="folder that image paths are relative to")
    identities: Path | None = setting(
        None, help="ms1mv2: CSV of identity id to gender (columns identity, label[, group])"
    )
    val_fraction: float = setting(
        0.0, help="move this seeded fraction of each train cell to val (stratified)"
    )
    seed: int = setting(0, help="seed of the validation carve-out and of --per-cell")
    per_cell: int | None = setting(
        None,
        help="keep a seeded sample of at most this many images of each split's (group, "
        "label) cell, after the validation carve-out: a quick look at a large set",
        minimum=1,
    )
