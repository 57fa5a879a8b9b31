"""Settings of the stages that test the maps: ablate, agreement and validate."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from saliency.configs.selection import groups_setting
from saliency.data.regions import REGION_CODES, REGIONS
from saliency.perturb.names import FILL_PLACES, FILLS, MODES
from saliency.settings import setting


@dataclass
class AblationConfig:
    split: str = setting("test", help="which data split to ablate")
    regions: list[str] = setting(
        help=f"{', '.join(REGIONS)} or all; repeatable",
        factory=lambda: list(REGIONS),
        aliases=("--region",),
    )
    fill: str = setting("blur", help="what replaces a region", choices=FILLS)
    mode: str = setting(
        "delete", help="delete fills the region; keep fills everything but it", choices=MODES
    )
    batch_size: int = setting(32, help="images per pass", minimum=1)
    seed: int = setting(0, help="noise fill and bootstrap")
    limit: int | None = setting(None, help="only the first N images of the split", minimum=1)
    groups: list[str] = setting(
        help="subgroup, cell (AA_F) or all; repeatable",
        factory=lambda: ["all"],
        aliases=("--group",),
    )
    protect: bool = setting(
        True,
        help="leave eyes, brows, nose and mouth untouched by other regions' fills (--no-protect: "
        "the reference recipe exactly, whose feathered fill may spill onto neighbours)",
    )
    fill_on: str = setting(
        "auto",
        help="where the fills run: DataLoader workers with OpenCV, or batched on the model's "
        "device (the same bytes; auto: workers on a CPU, the device on a GPU)",
        choices=FILL_PLACES,
    )
    manifest: str | None = setting(
        None,
        help="region masks for the run's images (e.g. the manifest `saliency regions` wrote), "
        "matched by path; no retraining needed",
    )

    def __post_init__(self) -> None:
        if "all" in self.regions:
            self.regions = list(REGIONS)
        bad = [r for r in self.regions if r not in REGION_CODES]
        if bad or not self.regions:
            raise ValueError(f"unknown region(s) {bad}; valid: {', '.join(REGIONS)}, all")
        if self.fill not in FILLS:
            raise ValueError(f"unknown fill {self.fill!r}; valid: {', '.join(FILLS)}")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; valid: {', '.join(MODES)}")
        if self.fill_on not in FILL_PLACES:
            valid = ", ".join(FILL_PLACES)
            raise ValueError(f"unknown fill place {self.fill_on!r}; valid: {valid}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AgreementConfig:
    run: Path = setting(help="the run folder", context=True)
    maps_split: str = setting("test", help="which explained data split")
    methods: list[str] | None = setting(
        None, help="repeatable (default: every method with shares)", aliases=("--method",),
        renamed=("method",),
    )  # fmt: skip
    fills: list[str] | None = setting(
        None, help="repeatable (default: every fill with delete-mode ablations)",
        aliases=("--fill",), renamed=("fill",),
    )  # fmt: skip
    groups: list[str] | None = groups_setting()
    bootstrap: int = setting(2000, help="resamples per interval", minimum=1)
    seed: int = setting(0, help="bootstrap seed")

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


@dataclass
class ValidateConfig:
    run: Path = setting(help="the run folder", context=True)
    split: str = setting("test", help="which explained data split")
    methods: list[str] | None = setting(
        None, help="repeatable (default: every explained method)", aliases=("--method",)
    )
    fill: str | None = setting(
        None, help="ablation and curve fill (default: the run's ablation fill, else blur)"
    )
    randomization_images: int = setting(16, help="images of the randomization test", minimum=1)
    threshold: float = setting(
        0.5, help="randomization passes when each similarity's mean is below this"
    )
    curve_images: int = setting(64, help="images of the deletion and insertion curves", minimum=1)
    curve_steps: int = setting(16, help="steps of each curve")
    floor: bool = setting(
        True, help="explain a re-initialized copy (a floor, reported beside the null)"
    )
    bootstrap: int = setting(2000, help="resamples per interval", minimum=1)
    seed: int = setting(0, help="bootstrap and randomization seed")
    device: str = setting("auto", help="auto, cpu, cuda, cuda:1, ...", context=True)
    workers: int = setting(2, help="worker processes", context=True)

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
