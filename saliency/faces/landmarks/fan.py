"""face-alignment's 2D FAN (the field's usual landmarker), on dlib's face boxes.

face-alignment downloads its weights while it builds its model. We never let it: the weight
file it would fetch is looked up in the torch hub cache first, and when it is missing the
error says which file to place where. Faces are found by dlib's HOG detector and handed to
FAN as detections, so no detector weights are needed either.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import torch

from saliency.faces.landmarks.base import Face
from saliency.faces.landmarks.dlib import DlibBackend

NETWORK = "2DFAN-4"


def fan_weights() -> tuple[Path, str]:
    """Where face-alignment keeps the 2D FAN weights, and their download address."""
    try:
        from face_alignment import api
    except ImportError as exc:
        raise ImportError(
            "the fan backend needs face-alignment: `pip install numba && pip install "
            "--no-deps face-alignment` (its opencv-python would shadow opencv-python-headless)"
        ) from exc
    url = api.models_urls[NETWORK]
    name = os.path.basename(urlparse(url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name, url


class FanBackend:
    """dlib boxes, then FAN's 68 points in each box."""

    name = "fan"

    def __init__(self, device: str = "cpu", predictor: str | os.PathLike | None = None):
        path, url = fan_weights()
        if not path.is_file():
            raise FileNotFoundError(
                f"FAN weights are not in the torch hub cache; saliency never downloads them: "
                f"fetch {url} on a machine with internet and place it at {path}"
            )
        from face_alignment import FaceAlignment, LandmarksType

        self.boxes = DlibBackend(predictor)
        self.fan = FaceAlignment(
            LandmarksType.TWO_D,
            device=str(device),
            flip_input=False,
            face_detector="folder",  # detects nothing itself and loads no weights
            compile=False,
        )

    def faces(self, image: np.ndarray, row: pd.Series | None = None) -> list[Face]:
        found = self.boxes.faces(image)
        if not found:
            return []
        boxes = [np.array(f.box, dtype=np.float32) for f in found]
        points = self.fan.get_landmarks_from_image(image, detected_faces=boxes) or []
        return [
            Face(f.box, np.asarray(p, dtype=np.float64)[:, :2], f.score)
            for f, p in zip(found, points, strict=True)
        ]
