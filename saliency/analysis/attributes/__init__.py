"""Image attributes behind group gaps, and their relation to errors per cell.

- :mod:`.measure`: per image, from the image and its region label map: face-skin brightness
  (mean CIE L*), hair over the face (the share of the face oval and forehead covered by
  hair) and visible face area. The exact definitions are in that module's docstring.
- :mod:`.logistic`: a penalized (Firth or ridge) logistic regression of correctness on cell
  indicators and standardized attributes, fitted for many bootstrap resamples at once, and
  each cell's gap as an average marginal effect.
- :mod:`.gap`: per cell, the gap with and without the attributes (paired, cell-stratified
  bootstrap of the change) and the gap on a subset matched on the attributes.
- :mod:`.tables`: distributions per cell and accuracy per attribute bin.

Sources: Wu et al. 2022 (skin brightness), Bhatta et al. 2023 (hair over the face; gaps on
test sets balanced for it), Albiero et al. 2020 (visible face area); DESIGN.md, "Image
attributes".
"""

from __future__ import annotations

ATTRIBUTES: tuple[str, ...] = ("skin_brightness", "hair_over_face", "face_area")
LABELS: dict[str, str] = {
    "skin_brightness": "skin brightness (L*)",
    "hair_over_face": "hair over the face",
    "face_area": "visible face area",
}
