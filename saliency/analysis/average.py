"""Average maps and average faces of a selection, streamed over memory-mapped maps.

Means and standard deviations are combined chunk by chunk (Chan et al.'s parallel update),
in float64, so memory stays flat and results equal numpy's on the whole stack (``ddof=0``).
Sums and counts merge exactly across shards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from saliency.analysis.normalize import normalize_maps
from saliency.models.loader import ImageSource
from saliency.models.preprocess import Preprocessing


@dataclass
class Moments:
    """Count, mean and sum of squared deviations of a stack of maps ``[H, W]``."""

    n: int
    mean: np.ndarray
    m2: np.ndarray

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.n) if self.n else np.full_like(self.mean, np.nan)

    def merge(self, other: Moments) -> Moments:
        if self.n == 0:
            return other
        if other.n == 0:
            return self
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        m2 = self.m2 + other.m2 + delta**2 * (self.n * other.n / n)
        return Moments(n, mean, m2)


def partition_ids(index, columns: Sequence[str] = ("group", "label", "correct")) -> np.ndarray:
    """An integer per row naming its (group, label, correct) partition; selections are
    unions of partitions, so one pass over the maps serves every selection."""
    keys = index[list(columns)].astype(str).agg("\x1f".join, axis=1)
    _, ids = np.unique(keys.to_numpy(), return_inverse=True)
    return ids


def partition_moments(
    maps: np.ndarray, ids: np.ndarray, norm: str, chunk: int = 512
) -> dict[int, Moments]:
    """Moments of the normalized maps of every partition, in one chunked pass."""
    h, w = maps.shape[1:]
    out: dict[int, Moments] = {}
    for start in range(0, len(ids), chunk):
        x = normalize_maps(maps[start : start + chunk], norm)
        part = ids[start : start + chunk]
        for pid in np.unique(part):
            sub = x[part == pid]
            mean = sub.mean(axis=0)
            m = Moments(len(sub), mean, ((sub - mean) ** 2).sum(axis=0))
            out[int(pid)] = out.get(int(pid), Moments(0, np.zeros((h, w)), np.zeros((h, w))))
            out[int(pid)] = out[int(pid)].merge(m)
    return out


def partition_faces(
    paths: Sequence[str], ids: np.ndarray, pre: Preprocessing, workers: int = 2
) -> dict[int, tuple[np.ndarray, int]]:
    """Sum of images ``[h, w, 3]`` (0-255 scale) and count per partition, in one pass."""
    source = ImageSource(paths, pre, cache_bytes=0, workers=workers)
    out: dict[int, tuple[np.ndarray, int]] = {}
    for images, rows in source.batches(np.arange(len(source)), 256):
        x = images.to(torch.float64).numpy()
        part = ids[rows.numpy()]
        for pid in np.unique(part):
            s, n = out.get(int(pid), (0.0, 0))
            out[int(pid)] = (s + x[part == pid].sum(axis=0), n + int((part == pid).sum()))
    return out


def merge_partitions(
    pids: Sequence[int], moments: dict[int, Moments], faces: dict[int, tuple[np.ndarray, int]]
) -> tuple[Moments, np.ndarray]:
    """Moments and mean face ``[h, w, 3]`` in [0, 1] of a union of partitions."""
    total = None
    face_sum, face_n = 0.0, 0
    for pid in pids:
        total = moments[pid] if total is None else total.merge(moments[pid])
        s, n = faces[pid]
        face_sum, face_n = face_sum + s, face_n + n
    return total, np.asarray(face_sum) / (255.0 * max(face_n, 1))
