"""The six facial regions and their codes in region label maps.

A region label map is ``uint8 [H, W]`` with exactly one code per pixel (exclusive regions):
0 background or other (neck, clothes), 1 skin, 2 brows, 3 eyes, 4 nose, 5 mouth, 6 hair.
"""

from __future__ import annotations

REGIONS: tuple[str, ...] = ("eyes", "brows", "nose", "mouth", "skin", "hair")
BACKGROUND = 0
REGION_CODES: dict[str, int] = {"skin": 1, "brows": 2, "eyes": 3, "nose": 4, "mouth": 5, "hair": 6}
CODE_NAMES: dict[int, str] = {0: "background", **{v: k for k, v in REGION_CODES.items()}}

# iBUG 300-W 68-point groups (DESIGN.md, "Regions").
LANDMARK_GROUPS: dict[str, range] = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "mouth": range(48, 68),
}


def check_region(name: str) -> str:
    """Return ``name`` if it is one of the six regions, else raise listing them."""
    if name not in REGION_CODES:
        raise ValueError(f"unknown region {name!r}; valid regions: {', '.join(REGIONS)}")
    return name
