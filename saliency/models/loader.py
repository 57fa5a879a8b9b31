"""Batches of resized ``uint8`` images in a given order, from memory or streamed from disk.

Both sources yield ``(images uint8 [B, h, w, 3], rows int64 [B])`` where ``rows`` index the
list of paths. Decoding runs in threads (preload) or DataLoader workers (stream); anything
random (shuffling, augmentation) is decided by the caller, so results do not depend on the
number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from saliency.models.preprocess import Preprocessing, load_resized

Batch = tuple[torch.Tensor, torch.Tensor]


class _Files(Dataset):
    def __init__(self, paths: Sequence[Path], pre: Preprocessing):
        self.paths, self.pre = list(paths), pre

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(load_resized(self.paths[i], self.pre)), i


class ImageSource:
    """Resized images of ``paths`` under ``pre``, held in RAM when they fit in ``cache_bytes``."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        pre: Preprocessing,
        cache_bytes: int = 4 << 30,
        workers: int = 2,
        progress: Callable[[int], None] | None = None,
    ):
        self.paths = [Path(p) for p in paths]
        self.pre = pre
        self.workers = workers
        need = len(self.paths) * pre.hw[0] * pre.hw[1] * 3
        self.memory: np.ndarray | None = None
        if need <= cache_bytes:
            self.memory = self._preload(progress)

    def __len__(self) -> int:
        return len(self.paths)

    def _preload(self, progress: Callable[[int], None] | None) -> np.ndarray:
        out = np.empty((len(self.paths), *self.pre.hw, 3), np.uint8)

        def one(i: int) -> None:
            out[i] = load_resized(self.paths[i], self.pre)

        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            for _ in pool.map(one, range(len(self.paths)), chunksize=32):
                if progress is not None:
                    progress(1)
        return out

    def batches(self, order: np.ndarray, batch_size: int) -> Iterator[Batch]:
        """Yield batches of the rows in ``order`` (memory stays flat when streaming)."""
        order = np.asarray(order, dtype=np.int64)
        if self.memory is not None:
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                yield torch.from_numpy(self.memory[rows]), torch.from_numpy(rows)
            return
        loader = DataLoader(
            _Files(self.paths, self.pre),
            batch_size=batch_size,
            sampler=order.tolist(),
            num_workers=self.workers,
            persistent_workers=False,
            pin_memory=torch.cuda.is_available(),
        )
        for images, rows in loader:
            yield images, rows

    def mean(self, batch_size: int = 256) -> torch.Tensor:
        """Mean image ``float64 [h, w, 3]`` in [0, 1] over all rows (streamed)."""
        total = torch.zeros(*self.pre.hw, 3, dtype=torch.float64)
        for images, _ in self.batches(np.arange(len(self)), batch_size):
            total += images.to(torch.float64).sum(dim=0)
        return total / (255.0 * max(1, len(self)))
