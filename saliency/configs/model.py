"""Settings of the model stages: adopt, evaluate, export and the null model.

Training's recipe is :class:`saliency.models.recipe.TrainConfig` (re-exported here).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from saliency.imsize import InputSize, parse_size
from saliency.models.recipe import Augmentation, TrainConfig
from saliency.settings import setting

__all__ = ["AdoptConfig", "Augmentation", "EvaluateConfig", "ExportConfig", "NullConfig",
           "TrainConfig"]  # fmt: skip

OUTPUT_KINDS = ("auto", "logits", "probabilities", "log-probabilities")
EXPORT_FORMATS = ("onnx", "pt2")


def _floats(text: str) -> tuple[float, ...]:
    """``"0.5,0.5,0.5"`` -> ``(0.5, 0.5, 0.5)``."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r} is not three comma-separated numbers (R,G,B)") from None
    if len(values) != 3:
        raise ValueError(f"{text!r}: give three numbers, R,G,B")
    return values


@dataclass
class AdoptConfig:
    out: str = setting(help="the run folder to create", context=True)
    classes: list[str] = setting(
        help="class names in output order, e.g. female,male (needed unless an exported "
        "model's sidecar gives them)",
        factory=list,
    )
    size: InputSize | None = setting(
        None,
        help="input size in px, one side or HEIGHTxWIDTH (needed unless an exported model's "
        "sidecar gives it)",
        parse=parse_size,
        metavar="S|HxW",
    )
    weights: str | None = setting(None, help="the model file")
    arch: str | None = setting(
        None,
        help="torchvision classifier name (e.g. resnet50), or timm:NAME for a timm model "
        "(e.g. timm:vit_small_patch16_224)",
    )
    function: str | None = setting(None, help="module:function that returns the nn.Module")
    mean: tuple[float, float, float] | None = setting(
        None, help="R,G,B in 0-1 pixel units (default ImageNet)", parse=_floats, metavar="R,G,B"
    )
    std: tuple[float, float, float] | None = setting(
        None, help="R,G,B in 0-1 pixel units (default ImageNet)", parse=_floats, metavar="R,G,B"
    )
    color: str | None = setting(
        None,
        help="channel order the model takes: rgb, or bgr for OpenCV and Caffe ports (--mean "
        "and --std are then B,G,R); default: an export's own, else rgb",
        choices=("rgb", "bgr"),
    )
    output: str = setting(
        "auto",
        help="what the model returns (auto: a cut-off softmax means logits; rows that sum to "
        "one mean probabilities)",
        choices=OUTPUT_KINDS,
    )
    output_name: str | None = setting(
        None,
        help="which output of a model with several: an ONNX output's name, or a torch "
        "model's tuple index or dict key (needed when there are several)",
    )
    output_slice: str | None = setting(
        None, help="START:STOP of the gender outputs (FairFace: 7:9)"
    )
    target_layer: str | None = setting(
        None, help="module path or graph node for Grad-CAM (default: the last convolutional block)"
    )
    manifest: str | None = setting(None, help="the images the run works on", context=True)
    trust_pickle: bool = setting(
        False, help="allow loading a whole pickled model (this runs code from the file)"
    )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvaluateConfig:
    run: Path = setting(help="the run folder", context=True)
    splits: list[str] = setting(
        help="data splits to evaluate: train, val, test or all; repeatable",
        factory=lambda: ["test"],
        aliases=("--split",),
        renamed=("split",),
    )
    manifest: Path | None = setting(
        None,
        help="the images to evaluate (default: the run's own); the first one a run is given "
        "becomes its images; another data set needs --name",
    )
    name: str | None = setting(
        None,
        help="evaluate --manifest as a named set: writes RUN/eval/NAME/ (its --split rows; "
        "rows without a split count as test)",
    )
    batch_size: int = setting(128, help="images per forward pass", minimum=1)
    workers: int = setting(2, help="image decoding workers", context=True)
    device: str = setting("auto", help="auto, cpu, cuda, cuda:1, ...", context=True)

    def folders(self) -> list[str]:
        """The folders under ``RUN/eval/`` this evaluation writes: the named set, else one
        per split."""
        return [self.name] if self.name else list(self.splits)


@dataclass
class ExportConfig:
    run: str = setting(help="the run folder", context=True)
    format: str = setting("onnx", help="interchange format", choices=EXPORT_FORMATS)
    out: str | None = setting(None, help="file to write (default RUN/export/model.FORMAT)")


@dataclass
class NullConfig:
    run: Path = setting(help="the run folder", context=True)
    seed: int = setting(0, help="seed of the label permutation (training keeps the run's own seed)")
    seeds: int = setting(
        1,
        help="null models to train, permutation seeds SEED..SEED+K-1 (the first in RUN/null/, "
        "the others in RUN/nulls/seed<S>/): verdicts judge the lift against their average "
        "and spread",
        minimum=1,
    )
    epochs: int | None = setting(
        None, help="epochs (default: the recipe's; fewer is recorded and reported)", minimum=1
    )
    device: str = setting("auto", help="auto, cpu, cuda, cuda:1, ...", context=True)
    workers: int = setting(2, help="image decoding workers", context=True)

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}
