"""Configuration of the planted-cue face generator, and parsing of its command-line values."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from saliency.data.regions import REGIONS, check_region
from saliency.imsize import InputSize, as_size, hw, parse_size
from saliency.settings import setting

CLASSES: tuple[str, str] = ("female", "male")

# Skin tone is a position on a light-to-dark palette (see face.SKIN_PALETTE). Subgroups
# differ only in their tone range; tone carries no class information.
DEFAULT_GROUPS: dict[str, tuple[float, float]] = {"A": (0.0, 0.45), "B": (0.55, 1.0)}

# What each region's cue changes (shape or texture inside that region only; never color),
# and the class-conditional shift at strength 1, in units of the canonical 128 px face.
# sign +1: larger for male. The individual spread (sd) is the same for both classes.
CUE_PARAMETERS: dict[str, dict[str, float | str]] = {
    "eyes": {"param": "eye_height", "base": 5.6, "shift": -1.9, "sd": 0.4},
    "brows": {"param": "brow_thickness", "base": 4.0, "shift": 1.7, "sd": 0.4},
    "nose": {"param": "nose_width", "base": 17.0, "shift": 4.2, "sd": 0.9},
    "mouth": {"param": "lip_thickness", "base": 1.0, "shift": -0.3, "sd": 0.08},
    "skin": {"param": "stubble", "base": 0.0, "shift": 1.0, "sd": 0.0},
    # strand direction, degrees from vertical: near-vertical strands vs near-horizontal waves,
    # the same contrast in both. A texture inside the hair, not its outline (a length cue puts
    # the evidence for short hair in background pixels, where no region analysis sees it),
    # and symmetric: each class's hair differs from a blurred or mean baseline, so IG is not
    # blind to one class (a contrast cue, smooth vs coarse, leaves the smooth class's evidence
    # equal to a blur baseline's).
    "hair": {"param": "hair_angle", "base": 45.0, "shift": -35.0, "sd": 8.0},
}


def _unit_assignment(text: str, form: str, what: str) -> tuple[str, float]:
    """``"NAME=V"`` with V in [0, 1] -> ``(NAME, V)``; ``form`` is shown on errors."""
    name, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r} must look like {form}")
    try:
        number = float(value)
    except ValueError as exc:
        raise ValueError(f"{what} in {text!r} is not a number") from exc
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{what} in {text!r} must lie in [0, 1]")
    return name.strip(), number


def parse_cue(text: str) -> tuple[str, float]:
    """``"brows=1"`` -> ``("brows", 1.0)``; strength must lie in [0, 1]."""
    name, strength = _unit_assignment(text, "REGION=STRENGTH, e.g. brows=1", "cue strength")
    return check_region(name), strength


def parse_cue_cell(text: str) -> tuple[str, float]:
    """``"B_F=0.5"`` -> ``("B_F", 0.5)``: probability of carrying the own class's cue."""
    return _unit_assignment(text, "CELL=P, e.g. B_F=0.5", "probability")


def parse_fringe(text: str) -> tuple[str, float]:
    """``"A_F=0.8"`` -> ``("A_F", 0.8)``: probability of a long fringe over the face."""
    return _unit_assignment(text, "CELL=P, e.g. A_F=0.8", "fringe probability")


def parse_group_tone(text: str) -> tuple[str, tuple[float, float]]:
    """``"A=0:0.45"`` -> ``("A", (0.0, 0.45))``; a bare name takes an even share of tones."""
    name, sep, value = text.partition("=")
    if not sep:
        return name.strip(), (float("nan"), float("nan"))
    lo, _, hi = value.partition(":")
    rng = (float(lo), float(hi))
    if not 0.0 <= rng[0] <= rng[1] <= 1.0:
        raise ValueError(f"tone range in {text!r} must satisfy 0 <= lo <= hi <= 1")
    return name.strip(), rng


@dataclass
class SynthConfig:
    """Everything that determines a synthetic data set (with ``seed``, it is reproducible).

    Geometry is given for a canonical 128 px face and scaled to ``size``; a non-square
    ``size`` (``218x178``, height first) is the square of its longer side with the middle
    cut out, as CelebA's crops are taller than wide.
    """

    n: int = setting(2000, help="number of images")
    size: InputSize = setting(
        128,
        help="image size in px: one side, or HEIGHTxWIDTH (the face drawn at the longer side, "
        "the middle kept)",
        parse=parse_size,
        metavar="S|HxW",
    )
    seed: int = setting(0, help="seed of everything drawn")
    cues: dict[str, float] = setting(
        help="plant class information in a region: eyes, brows, nose, mouth, skin, hair; "
        "strength 0 (none) to 1 (strong); repeatable",
        factory=dict, parse=parse_cue, aliases=("--cue",),
        metavar="REGION=STRENGTH",
    )  # fmt: skip
    cue_cells: dict[str, float] = setting(
        help="in this cell an image carries its own class's cue with probability P, the other "
        "class's otherwise (e.g. B_F=0.5); repeatable",
        factory=dict, parse=parse_cue_cell, aliases=("--cue-cell",),
        metavar="CELL=P",
    )  # fmt: skip
    fringe: dict[str, float] = setting(
        help="in this cell a face has a long fringe with probability P: bangs from the hairline "
        "down over the forehead and brows, reaching 70-100% of the way from the face's top to "
        "the eye line, labelled hair (e.g. A_F=0.8); repeatable; other cells: none",
        factory=dict, parse=parse_fringe, metavar="CELL=P",
    )  # fmt: skip
    groups: dict[str, tuple[float, float]] = setting(
        help="subgroups, optionally with skin-tone ranges on a 0 (light) to 1 (dark) scale: "
        "A=0:0.45,B=0.55:1; a bare name takes an even share of tones",
        factory=lambda: dict(DEFAULT_GROUPS), parse=parse_group_tone,
        metavar="NAME[=LO:HI]",
    )  # fmt: skip
    split_fractions: tuple[float, float, float] = setting(
        (0.7, 0.15, 0.15), help="train, val and test fractions"
    )
    max_rotation_deg: float = setting(8.0, help="head rotation, uniform in [-r, r] degrees")
    scale_range: tuple[float, float] = setting((0.92, 1.08), help="face scale, uniform")
    max_shift: float = setting(0.03, help="face shift, fraction of the image size")
    noise_sd: tuple[float, float] = setting((2.0, 6.0), help="pixel noise sd range, 0-255 units")
    light_gradient: float = setting(0.3, help="max relative brightness change across the face")
    image_format: str = setting(
        "png", help="image file format", choices=("png", "jpg"), aliases=("--format",)
    )

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("--n must be at least 1")
        self.size = as_size(self.size)
        if min(hw(self.size)) < 32:
            raise ValueError("--size must be at least 32 px")
        for name in self.cues:
            check_region(name)
        names = list(self.groups)
        if not names:
            raise ValueError("at least one group is needed")
        # bare group names share the tone axis evenly, with a gap between neighbours
        if any(lo != lo for lo, _ in self.groups.values()):  # NaN check
            k = len(names)
            width = 1.0 / k
            self.groups = {
                g: (i * width + 0.05 * (i > 0), (i + 1) * width - 0.05 * (i < k - 1))
                for i, g in enumerate(names)
            }
        valid_cells = {f"{g}_{c[0].upper()}" for g in names for c in CLASSES}
        for what, cells in (("cue cell", self.cue_cells), ("fringe cell", self.fringe)):
            for cell in cells:
                if cell not in valid_cells:
                    raise ValueError(
                        f"unknown {what} {cell!r}; valid cells: {', '.join(sorted(valid_cells))}"
                    )
        for cell, p in self.fringe.items():  # a TOML table's values skip the flag's parser
            if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
                raise ValueError(f"fringe probability of {cell} must lie in [0, 1], not {p!r}")
        self.fringe = {cell: float(p) for cell, p in self.fringe.items()}
        if abs(sum(self.split_fractions) - 1.0) > 1e-6:
            raise ValueError("split fractions must sum to 1")
        if self.image_format not in ("png", "jpg"):
            raise ValueError("image format must be png or jpg")

    @property
    def classes(self) -> tuple[str, str]:
        return CLASSES

    def to_dict(self) -> dict:
        return asdict(self)

    def ground_truth(self) -> dict:
        """What was planted, in a form later stages (validate, share) can check against."""
        ranked = sorted(self.cues.items(), key=lambda kv: -kv[1])
        return {
            "cues": dict(self.cues),
            "cued_regions": [r for r, s in ranked if s > 0],
            "uncued_regions": [r for r in REGIONS if self.cues.get(r, 0.0) == 0.0],
            "cue_cells": dict(self.cue_cells),
            "fringe_cells": dict(self.fringe),
            "cue_parameters": {
                r: {**CUE_PARAMETERS[r], "strength": self.cues.get(r, 0.0)} for r in REGIONS
            },
            "note": (
                "An image's cue class equals its label, except in cue cells where it equals "
                "the label with probability P. Cue parameter = base + sign * strength * shift "
                "+ sd * z, sign +1 for a male cue class, -1 for female; skin: stubble = "
                "strength for a male cue class, 0 for female. A face in a fringe cell has a "
                "long fringe (manifest: long_fringe, long_fringe_reach) with probability P."
            ),
        }
