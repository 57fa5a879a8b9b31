"""The training recipe: every option of a training run, as plain data (no torch).

The command line builds its flags, help and defaults from these dataclasses without importing
torch; checkpoints store ``TrainConfig.to_dict()`` so ``--resume`` rebuilds the same run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from saliency.imsize import InputSize, as_size, parse_size
from saliency.models.names import ARCHS
from saliency.settings import setting

LOSSES = ("bce", "ce")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("plateau", "step", "cosine")


def freeze_blocks(text: str) -> int | None:
    """``none`` -> None (train everything); ``head`` -> 0; ``head+K`` -> K (the head and the
    backbone's last K blocks train)."""
    if text == "none":
        return None
    if text == "head":
        return 0
    head, _, k = text.partition("+")
    if head != "head" or not k.isdigit() or int(k) < 1:
        raise ValueError(f"--freeze {text}: write none, head, or head+K (e.g. head+1)")
    return int(k)


@dataclass(frozen=True)
class Augmentation:
    hflip: float = setting(0.5, help="flip probability", aliases=("--hflip",))
    rotation_deg: float = setting(
        10.0, help="rotation, uniform in [-r, r] degrees", aliases=("--rotation",)
    )
    brightness: float = setting(
        0.2, help="multiplicative brightness factor in [1 - b, 1 + b]", aliases=("--brightness",)
    )
    contrast: float = setting(
        0.2, help="contrast factor in [1 - c, 1 + c] around the mean gray", aliases=("--contrast",)
    )
    erase: float = setting(
        0.0,
        help="random erasing probability (Zhong et al. 2020): one box of 2-33% of the image, "
        "filled with its mean color (0: off)",
        aliases=("--erase",),
    )
    shift: float = setting(
        0.0,
        help="translation jitter, uniform in [-s, s] of the image side per axis; aligned faces "
        "otherwise let the net tie evidence to absolute position (0: off)",
        aliases=("--shift",),
    )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainConfig:
    manifest: str = setting(help="manifest CSV (required unless --resume)", context=True)
    out: str = setting(help="the run folder", context=True)
    arch: str = setting(
        "resnet18",
        help="architecture (inception_resnet_v2 is timm's, at output stride 32: a 5x4 grid "
        "at 218x178 px, 8x8 at 299 px, so CAM-type verdicts need the larger input)",
        choices=ARCHS,
    )
    size: InputSize = setting(
        128,
        help="input size in px: one side, or HEIGHTxWIDTH (218x178: CelebA's native "
        "crop; TOML [218, 178])",
        parse=parse_size,
        metavar="S|HxW",
    )
    loss: str = setting("bce", help="bce: one logit; ce: one logit per class", choices=LOSSES)
    output_stride: int = setting(16, help="the last block's stride (16 doubles the CAM grid)",
                                 choices=(16, 32))  # fmt: skip
    se: bool = setting(False, help="squeeze-and-excitation blocks (ResNets)")
    dropout: float = setting(0.3, help="before the fully connected layer")
    pretrained: str | None = setting(
        None, help="'imagenet' (from the local torch hub cache) or a weights file"
    )
    freeze: str = setting(
        "none",
        help="none: train every layer; head: only the fully connected layer; head+K: it and "
        "the backbone's last K blocks (a ResNet's stages: head+1 adds layer4); frozen blocks "
        "keep their batch-norm statistics",
        metavar="none|head|head+K",
    )
    optimizer: str = setting(
        "adam", help="adam, adamw, or sgd (with --momentum and --nesterov)", choices=OPTIMIZERS
    )
    # 1e-3 left nose- and hair-cued faces at chance (issue 16)
    lr: float = setting(3e-4, help="the optimizer's learning rate")
    weight_decay: float = setting(0.0, help="the optimizer's weight decay")
    momentum: float = setting(0.9, help="SGD's momentum")
    nesterov: bool = setting(False, help="SGD with Nesterov momentum")
    scheduler: str = setting(
        "plateau",
        help="plateau: x plateau_factor after plateau_patience epochs without a better "
        "validation loss (once the model has left chance); step: x gamma every step_size "
        "epochs; cosine: cosine decay to 0 over the epochs",
        choices=SCHEDULERS,
    )
    step_size: int = setting(15, help="the step schedule's epochs per step", minimum=1)
    gamma: float = setting(0.1, help="the step schedule's factor")
    batch_size: int = setting(64, help="images per step", minimum=1)
    # 20 left one of three hair-cued runs at chance (issue 16)
    epochs: int = setting(
        30, help="total epochs; with --resume, raises the run's own total", minimum=1
    )
    plateau_factor: float = setting(0.2, help="learning-rate factor on a plateau")
    plateau_patience: int = setting(3, help="epochs without a better validation loss first")
    early_stopping: int = setting(
        5,
        help="stop after this many epochs without a better validation loss (epochs while "
        "validation accuracy is still at chance do not count)",
    )
    balanced: bool = setting(False, help="sample classes equally")
    sync_bn: bool = setting(
        False,
        help="under torchrun on GPUs: batch-norm statistics over the whole global batch "
        "(SyncBatchNorm), not each rank's slice; refused on CPUs",
    )
    seed: int = setting(0, help="seed of weights, order and augmentation")
    classes: list[str] | None = setting(
        None, help="class names in order, comma separated (default: sorted labels)"
    )
    augmentation: Augmentation = setting(help="training augmentation", factory=Augmentation)
    workers: int = setting(2, help="image decoding workers", context=True)
    device: str = setting("auto", help="auto, cpu, cuda, cuda:1, ...", context=True)
    cache_bytes: int = setting(
        4 << 30, help="decoded-image cache in bytes (4294967296 is 4 GiB; 0: off)"
    )

    def __post_init__(self) -> None:
        self.size = as_size(self.size)
        freeze_blocks(self.freeze)  # a ValueError that says what to write

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augmentation"] = self.augmentation.to_dict()
        return d
