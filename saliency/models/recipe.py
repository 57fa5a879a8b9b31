"""The training recipe: every option of a training run, as plain data (no torch).

The command line builds its help and defaults from these dataclasses without importing
torch; checkpoints store ``TrainConfig.to_dict()`` so ``--resume`` rebuilds the same run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Augmentation:
    hflip: float = 0.5  # probability
    rotation_deg: float = 10.0  # uniform in [-r, r]
    brightness: float = 0.2  # multiplicative factor in [1 - b, 1 + b]
    contrast: float = 0.2  # factor in [1 - c, 1 + c] around the image's mean gray
    erase: float = 0.0  # probability of random erasing (Zhong et al. 2020); 0 is off
    shift: float = 0.0  # translation, uniform in [-s, s] of the side, per axis; 0 is off

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainConfig:
    manifest: str
    out: str
    arch: str = "resnet18"
    size: int = 128
    loss: str = "bce"
    output_stride: int = 16
    se: bool = False
    dropout: float = 0.3
    pretrained: str | None = None
    lr: float = 3e-4  # 1e-3 left nose- and hair-cued faces at chance (issue 16)
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 30  # 20 left one of three hair-cued runs at chance (issue 16)
    plateau_factor: float = 0.2
    plateau_patience: int = 3
    early_stopping: int = 5
    balanced: bool = False
    seed: int = 0
    classes: list[str] | None = None
    augmentation: Augmentation = field(default_factory=Augmentation)
    workers: int = 2
    device: str = "auto"
    cache_bytes: int = 4 << 30

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augmentation"] = self.augmentation.to_dict()
        return d
