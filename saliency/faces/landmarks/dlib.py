"""dlib's HOG face detector and 68-point shape predictor: the backend that works offline.

The predictor file ``shape_predictor_68_face_landmarks.dat`` is looked for, in order, at
``--predictor PATH``, ``$SALIENCY_DLIB_PREDICTOR``, Debian's ``libdlib-data`` location and
inside the ``face-recognition-models`` package (which ``make`` installs).
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.faces.landmarks.base import Face

PREDICTOR = "shape_predictor_68_face_landmarks.dat"
DEBIAN = Path("/usr/share/dlib") / PREDICTOR


def predictor_candidates() -> list[Path]:
    """Where the 68-point predictor may be, in the order tried."""
    out = []
    if os.environ.get("SALIENCY_DLIB_PREDICTOR"):
        out.append(Path(os.environ["SALIENCY_DLIB_PREDICTOR"]))
    out.append(DEBIAN)
    spec = importlib.util.find_spec("face_recognition_models")  # not imported: it needs
    if spec is not None and spec.submodule_search_locations:  # the removed pkg_resources
        out.append(Path(spec.submodule_search_locations[0]) / "models" / PREDICTOR)
    return out


def find_predictor(path: str | os.PathLike | None = None) -> Path:
    """The predictor file to use; a clear error when there is none."""
    if path is not None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"--predictor {path} does not exist")
        return Path(path)
    for candidate in predictor_candidates():
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"dlib's {PREDICTOR} was not found; install it with `pip install "
        "face-recognition-models` (or Debian's libdlib-data), or pass --predictor PATH"
    )


HOG_MIN_FACE = 80  # px: the smallest face dlib's HOG detector finds without upsampling


def auto_upsample(height: int, width: int, fraction: float = 1 / 3, cap: int = 2) -> int:
    """Fewest pyramid doublings that find a face a ``fraction`` of the shorter side tall
    (a face data set's subject), so small crops get upsampled and large photos do not
    (upsampling a large photo finds more small false faces)."""
    k = 0
    while k < cap and HOG_MIN_FACE / 2**k > fraction * min(height, width):
        k += 1
    return k


@lru_cache(maxsize=4)
def _models(predictor: str, mtime_ns: int, size: int):
    """dlib's HOG detector and the 68-point predictor read from ``predictor``: once per
    process and version of the file. Reading the 100 MB predictor and building the detector
    took 0.8 s per backend, and ``align`` makes two (one to fail early on a missing file);
    detection only reads them."""
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(predictor)


class DlibBackend:
    """HOG detector + 68 points. ``upsample``: pyramid doublings before detection (None:
    :func:`auto_upsample` per image)."""

    name = "dlib"

    def __init__(self, predictor: str | os.PathLike | None = None, upsample: int | None = None):
        try:
            import dlib
        except ImportError as exc:
            raise ImportError(
                "the dlib backend needs dlib: `pip install dlib-bin face-recognition-models`"
            ) from exc
        del dlib  # (imported above only to say what is missing)
        self.predictor_path = find_predictor(predictor)
        stat = self.predictor_path.stat()
        self.detector, self.predictor = _models(str(self.predictor_path), stat.st_mtime_ns,
                                                stat.st_size)  # fmt: skip
        self.upsample = upsample

    def faces(self, image: np.ndarray, row: pd.Series | None = None) -> list[Face]:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        up = self.upsample if self.upsample is not None else auto_upsample(*image.shape[:2])
        rects, scores, _ = self.detector.run(image, up, 0.0)
        out = []
        for rect, score in zip(rects, scores, strict=True):
            shape = self.predictor(image, rect)
            pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            out.append(Face(tuple(float(v) for v in box), pts, float(score)))
        return out
