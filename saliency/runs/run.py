"""``Run``: one run folder (DESIGN.md, "Run directory"), read through typed methods.

Stages read each other's files through a :class:`Run`, never by importing each other:
the checkpoint, the run's images, its evaluations, the adoption record, the recorded explain
settings, the null model's shares and the delete-mode ablations. Paths come from
:mod:`saliency.rundir`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from saliency.data.regions import REGIONS
from saliency.rundir import best_checkpoint, last_checkpoint, null_dir, null_dirs, require_run
from saliency.runs import ablation, evals, maps, model

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from saliency.models.checkpoint import Checkpoint, DataRecord

C = TypeVar("C", bound=maps.Recorded)
E = TypeVar("E")


class Run:
    """A run folder ``path``; reading it is lazy, and the checkpoint is read once."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._checkpoint: Checkpoint | None = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    # -- the model ---------------------------------------------------------------------
    def require(self) -> Run:
        """This run, or a clear error when it has no model (``checkpoints/best.pt``)."""
        require_run(self.path)
        return self

    def has_recipe(self) -> bool:
        """The run was trained here (``checkpoints/last.pt``: its recipe can be rerun)."""
        return last_checkpoint(self.path).is_file()

    def checkpoint(self) -> Checkpoint:
        """The run's model record (``checkpoints/best.pt``), read on first use."""
        if self._checkpoint is None:
            from saliency.models.checkpoint import read_checkpoint

            self._checkpoint = read_checkpoint(best_checkpoint(self.path))
        return self._checkpoint

    def images(self) -> DataRecord:
        """The run's images (its analysis set): the checkpoint's data record (training's or
        adopt's manifest), else the first ``evaluate --manifest`` (``RUN/images.json``); its
        ``manifest`` is None when the run names none."""
        from saliency.models.evaluate import run_images

        return run_images(self.checkpoint(), self.path)

    def evaluations(self, named: bool | None = None) -> list[evals.Evaluation]:
        """Finished evaluations (``RUN/eval/*/``): the run's own splits, then named sets of
        other data sets; ``named`` True or False keeps only those."""
        found = evals.evaluations(self.path)
        return found if named is None else [e for e in found if e.named == named]

    @property
    def adopted(self) -> bool:
        """The model came from ``saliency adopt`` (it has no training recipe)."""
        return self.checkpoint().adopted

    def adoption(self) -> dict | None:
        """The adoption record (``RUN/model/adopted.json``, read without torch); None for
        a trained run."""
        return model.adoption_record(self.path)

    def applicable(self, methods: list[str]) -> tuple[list[str], str | None]:
        """``methods`` less cam for an adopted model that is not CAM-ready, and the note."""
        return model.applicable(self.path, methods)

    def mean_face(self, device: torch.device | str = "cpu", workers: int = 2) -> torch.Tensor:
        """The training images' mean ``float32 [3, H, W]`` in [0, 1] (IG's mean baseline)."""
        ckpt = self.checkpoint()
        return model.mean_face(ckpt, ckpt.pre, device, workers, self.path)

    # -- maps and what was measured on them ----------------------------------------------
    def recorded_configs(
        self, config: type[C] | None = None, warn: Callable[[str], None] | None = None
    ) -> dict[str, tuple[C, list[str]]]:
        """Per explained split: the recorded explain settings (read as ``config``, by default
        ``ExplainConfig``; ``warn`` hears settings recorded under older names) and the
        methods with maps there."""
        return maps.recorded_configs(self.path, config, warn)

    def same_images(self, split: str, ecfg: E, methods: list[str]) -> E:
        """``ecfg`` for another model's maps of the images this run explained on ``split``,
        for the same target classes, image by image."""
        return maps.same_images(self.path, split, ecfg, methods)

    @property
    def null(self) -> Run:
        """The null model's run (``RUN/null/``, written by ``saliency null``)."""
        return Run(null_dir(self.path))

    @property
    def nulls(self) -> list[Run]:
        """Every null model's run: ``RUN/null/`` and, after ``saliency null --seeds K``,
        ``RUN/nulls/seed<S>/`` (as recorded in ``config.json``)."""
        return [Run(p) for p in null_dirs(self.path)]

    def null_shares(self, method: str, split: str) -> list[pd.DataFrame]:
        """The null models' per-image shares of ``method`` on ``split`` (with ``image``),
        one table per null that has them (``saliency null --seeds K``)."""
        return maps.null_shares(self.path, method, split)

    def ablation_drops(
        self, fill: str, regions: tuple[str, ...] | list[str] = REGIONS
    ) -> pd.DataFrame | None:
        """Per-image drops ``path``, ``drop_<region>`` of the delete-mode ablations with
        ``fill``; None with fewer than three regions ablated."""
        return ablation.ablation_drops(self.path, fill, regions)

    def ablation_fills(self) -> list[str]:
        """Fills with delete-mode ablations (blur first)."""
        return ablation.ablation_fills(self.path)
