"""A typed reader of a run folder (DESIGN.md, "Module layout"): :class:`Run`.

It owns reading what the stages write: the checkpoint (:class:`Checkpoint`), the run's
images and evaluations (named sets of other data sets included), the adoption record, the
recorded explain settings, another model's maps of the same images, the null model's shares
and the delete-mode ablations. Stages read each other's files through it, never by
importing each other. Torch is imported only by the readers that need it.
"""

from __future__ import annotations

from saliency.data.synth.generate import planted_regions as ground_truth
from saliency.runs.ablation import ablation_drops, ablation_fills
from saliency.runs.evals import Evaluation, evaluations
from saliency.runs.maps import fixed_targets, null_shares, recorded_configs, same_images
from saliency.runs.model import adoption_record, applicable, mean_face
from saliency.runs.run import Run

__all__ = [
    "Evaluation",
    "Run",
    "ablation_drops",
    "ablation_fills",
    "adoption_record",
    "applicable",
    "evaluations",
    "fixed_targets",
    "ground_truth",
    "mean_face",
    "null_shares",
    "recorded_configs",
    "same_images",
]
