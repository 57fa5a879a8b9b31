"""Settings the analysis stages share: which images a selection takes."""

from __future__ import annotations

from typing import Any

from saliency.settings import setting


def groups_setting() -> Any:
    """The selection of groups the analysis stages share (``--groups``, alias ``--group``)."""
    return setting(
        None,
        help="subgroup, cell (AA_F) or all; repeatable (default: all, every subgroup, class "
        "and cell)",
        aliases=("--group",),
        renamed=("group",),
    )
