"""Settings of the stages that prepare images: align and regions."""

from __future__ import annotations

from dataclasses import dataclass

from saliency.faces.names import BACKENDS, POLICIES, SOURCES
from saliency.settings import setting


@dataclass
class AlignConfig:
    manifest: str = setting(help="manifest CSV of the photos to align", context=True)
    out: str = setting(help="output folder (aligned images and their manifest)", context=True)
    backend: str = setting("dlib", help="landmark detector", choices=BACKENDS)
    size: int = setting(128, help="side of the aligned crop in px")
    multiple: str = setting(
        "largest", help="several faces in a photo: keep the largest, or skip it", choices=POLICIES
    )
    upsample: int | None = setting(None, help="dlib pyramid doublings (default: by image size)")
    predictor: str | None = setting(
        None, help="dlib's shape_predictor_68_face_landmarks.dat or FAN's weights"
    )
    device: str = setting("cpu", help="for --backend fan: cpu, cuda, ...", context=True)
    workers: int = setting(2, help="worker processes", context=True)

    def __post_init__(self) -> None:
        if self.multiple not in POLICIES:
            raise ValueError(f"unknown --multiple {self.multiple!r}; valid: {', '.join(POLICIES)}")
        if self.size < 32:
            raise ValueError("--size must be at least 32 px")

    def backend_options(self) -> dict:
        if self.backend == "dlib":
            return {"predictor": self.predictor, "upsample": self.upsample}
        if self.backend == "fan":
            return {"predictor": self.predictor, "device": self.device}
        return {}


@dataclass
class RegionsConfig:
    manifest: str = setting(help="manifest CSV of aligned faces", context=True)
    out: str = setting(help="output folder (label maps and their manifest)", context=True)
    source: str = setting(
        "auto",
        help="where the masks come from: synthetic (the renderer's), parsing (BiSeNet), "
        "landmarks (68-point polygons), or auto (the first available)",
        choices=SOURCES,
    )
    parser_weights: str | None = setting(None, help="face-parsing.PyTorch's 79999_iter.pth")
    device: str = setting("cpu", help="for the parser: cpu, cuda, ...", context=True)
    hair: bool = setting(True, help="landmarks: estimate the hair region")
    preview: int = setting(16, help="faces on the preview sheet (0: none)")
