"""Image files in and out. Inside the library images are RGB ``uint8 [H, W, 3]``.

OpenCV's BGR order exists only here, at the file boundary. Grayscale, palette and RGBA
files are converted to RGB (alpha is composited over black); EXIF orientation is honoured.
A path ``<file>.rec#<offset>`` that is not itself a file names an image inside an MXNet
RecordIO file (:mod:`saliency.data.recordio`); it is read and decoded in memory.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from saliency.data.recordio import RecordError, read_image_bytes, split_record_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class ImageReadError(OSError):
    """An image that cannot be used; the message is the reason, fit for a skipped.csv."""


def is_image_name(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _record_bytes(path: Path) -> io.BytesIO | None:
    """The encoded image of a record path as a file object; None for an ordinary path."""
    # the pattern first: an ordinary path costs no extra stat (this runs once per image)
    if split_record_path(path) is None or path.is_file():
        return None
    try:
        return io.BytesIO(read_image_bytes(path))
    except RecordError as exc:
        raise ImageReadError(f"{exc}: {path}") from exc


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB ``uint8 [H, W, 3]``, upright per its EXIF orientation."""
    path = Path(path)
    source = _record_bytes(path)
    if source is None:
        if not path.is_file():
            raise ImageReadError(f"file not found: {path}")
        if path.stat().st_size == 0:
            raise ImageReadError(f"empty file: {path}")
    try:
        with Image.open(path if source is None else source) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                rgba = np.asarray(im, dtype=np.float32)
                rgb = rgba[..., :3] * (rgba[..., 3:] / 255.0)
                return np.ascontiguousarray(np.rint(rgb).astype(np.uint8))
            return np.array(im.convert("RGB"), dtype=np.uint8)  # writable copy
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"not a readable image ({exc.__class__.__name__}): {path}") from exc


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image as displayed (EXIF rotation applied), from its header."""
    path = Path(path)
    source = _record_bytes(path)
    if source is None and not path.is_file():
        raise ImageReadError(f"file not found: {path}")
    try:
        with Image.open(path if source is None else source) as im:
            im.verify()
        if source is not None:
            source.seek(0)
        with Image.open(path if source is None else source) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"not a readable image ({exc.__class__.__name__}): {path}") from exc
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def write_rgb(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write RGB ``uint8 [H, W, 3]`` (or a single-channel ``[H, W]``) to ``path``."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"write_rgb expects uint8, got {image.dtype}")
    out = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    if not cv2.imwrite(str(path), out):
        raise OSError(f"could not write image {path}")


def read_label_map(path: str | os.PathLike) -> np.ndarray:
    """Read a single-channel label map (e.g. region masks) as ``uint8 [H, W]``."""
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise ImageReadError(f"not a readable label map: {path}")
    if labels.ndim != 2:
        raise ImageReadError(f"label map {path} has {labels.shape[2]} channels, expected 1")
    return labels
