"""Settings of the map stages: explain, average and share."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from saliency import settings
from saliency.analysis.names import NORMS, OUTCOMES
from saliency.configs.selection import groups_setting
from saliency.methods.ig_settings import IGConfig
from saliency.methods.names import RULES
from saliency.settings import setting

DEFAULT_METHODS = ("cam", "gradcam", "ig")


@dataclass
class ExplainConfig:
    split: str = setting("test", help="which data split to explain: train, val, test or all")
    methods: list[str] = setting(
        help="methods, repeatable or comma separated (without cam for a model that is not "
        "CAM-ready)",
        factory=lambda: list(DEFAULT_METHODS),
        aliases=("--method",),
    )
    target: str = setting("predicted", help="the class explained: predicted, true, or a name")
    limit: int | None = setting(None, help="only the first N images of the split", minimum=1)
    batch_size: int = setting(32, help="images per pass", minimum=1)
    chunk: int = setting(256, help="images per stored chunk (written, then resumable)")
    ig: IGConfig = setting(help="Integrated Gradients", factory=IGConfig)
    upsample: str = setting(
        "receptive-field",
        help="how grid maps (cam, gradcam family) reach input size: receptive-field (each cell "
        "at its measured receptive-field centre) or half-pixel (the image-resize rule of OpenCV "
        "and pytorch-grad-cam)",
        choices=RULES,
    )
    fold_bn: bool = setting(
        True,
        help="run IG on the batch-norm-folded copy (about 1.4x faster on CPU; maps differ by "
        "float32 rounding) rather than the model as stored",
        aliases=("--no-fold",),
    )
    # another model's index.csv whose targets these maps explain, image by image (the null
    # model's and the floor's maps are for the classes the run's own maps were made for)
    target_file: str | None = setting(
        None, help="another run's index.csv whose targets these maps explain, image by image"
    )
    manifest: str | None = setting(
        None,
        help="region masks for the run's images (e.g. the manifest `saliency regions` wrote), "
        "matched by path, for share and validate; for an adopted run that names no images, "
        "the images themselves",
    )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ig"] = self.ig.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "config.json", warn=None) -> ExplainConfig:
        """The config that :meth:`to_dict` recorded (``RUN/config.json``): names it had
        before read under the current ones (``warn`` hears each), keys it no longer has
        dropped."""
        d = settings.upgrade(cls, dict(d), where, warn)
        ig = {k: v for k, v in (d.get("ig") or {}).items() if k in IGConfig.__dataclass_fields__}
        d["ig"] = IGConfig(**ig)
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class AverageConfig:
    run: Path = setting(help="the run folder", context=True)
    outcomes: list[str] = setting(
        help="which predictions: all, correct or incorrect; repeatable",
        factory=lambda: list(OUTCOMES),
        choices=OUTCOMES,
        aliases=("--split", "--outcome"),
        renamed=("split", "splits"),
    )
    groups: list[str] | None = setting(
        None,
        help="subgroup, cell (AA_F) or all; repeatable (default: all, every subgroup and cell)",
        aliases=("--group",),
        renamed=("group",),
    )
    label: str | None = setting(None, help="only this class", aliases=("--class",))
    methods: list[str] | None = setting(
        None, help="repeatable (default: every explained method)", aliases=("--method",),
        renamed=("method",),
    )  # fmt: skip
    norm: str = setting(
        "max", help="per-image normalization before averaging (max: m / max|m|)", choices=NORMS
    )
    contrast: str | None = setting(
        None,
        help="compare each selection with another: an outcome (correct, incorrect, all), a "
        "group/cell, or rest (every other image of the same outcome), with a max-t "
        "permutation test",
    )
    contrast_incorrect: bool = setting(
        False, help="also contrast each group's incorrect predictions with its correct ones "
        "(the study templates turn it on)",
    )  # fmt: skip
    contrast_cells: bool = setting(
        False, help="also contrast each evaluated cell with the rest of all predictions "
        "(the study templates turn it on)",
    )  # fmt: skip
    permutations: int = setting(1000, help="permutations of each contrast's max-t test", minimum=1)
    maps_split: str = setting("test", help="which explained data split")
    preview: bool = setting(True, help="a PNG preview beside each average (mean face | map)")
    workers: int = setting(2, help="worker processes (mean faces)", context=True)

    def __post_init__(self) -> None:
        bad = [o for o in self.outcomes if o not in OUTCOMES]
        if bad or not self.outcomes:
            raise ValueError(f"unknown outcome(s) {bad}; valid: {', '.join(OUTCOMES)}")

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


@dataclass
class ShareConfig:
    run: Path = setting(help="the run folder", context=True)
    methods: list[str] | None = setting(
        None, help="repeatable (default: every explained method)", aliases=("--method",),
        renamed=("method",),
    )  # fmt: skip
    outcomes: list[str] | None = setting(
        None,
        help="which predictions: all, correct or incorrect; repeatable (default: all three)",
        aliases=("--split", "--outcome"),
        renamed=("split",),
    )
    groups: list[str] | None = groups_setting()
    label: str | None = setting(None, help="only this class", aliases=("--class",))
    maps_split: str = setting("test", help="which explained data split")
    bootstrap: int = setting(2000, help="resamples per interval", minimum=1)
    seed: int = setting(0, help="bootstrap seed")
    workers: int = setting(2, help="worker processes", context=True)
    manifest: Path | None = setting(
        None,
        help="region masks for the explained images (e.g. the manifest `saliency regions` "
        "wrote), matched by path (default: the masks explain was given, else the run's)",
    )

    def to_dict(self) -> dict:
        return {k: str(v) for k, v in asdict(self).items()}  # as recorded before issue 17
