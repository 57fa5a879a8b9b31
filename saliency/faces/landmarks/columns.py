"""The ``columns`` backend: landmarks the manifest already holds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from saliency.faces.landmarks.base import FIVE, Face, box_of


class ColumnsBackend:
    """Landmarks already in the manifest: ``x0,y0..x67,y67`` or the 5 points as
    ``<name>_x, <name>_y`` columns for the names in :data:`FIVE` (CelebA's importer)."""

    name = "columns"

    def faces(self, image: np.ndarray, row: pd.Series | None = None) -> list[Face]:
        if row is None:
            raise ValueError("the columns backend needs the manifest row")
        cols68 = [f"{a}{i}" for i in range(68) for a in ("x", "y")]
        cols5 = [f"{n}_{a}" for n in FIVE for a in ("x", "y")]
        for cols, k in ((cols68, 68), (cols5, 5)):
            if all(c in row.index for c in cols):
                values = pd.to_numeric(row[cols], errors="coerce").to_numpy(np.float64)
                if np.isfinite(values).all():
                    pts = values.reshape(k, 2)
                    return [Face(box_of(pts), pts)]
        return []
