"""Sharding a stage's rows over torchrun's ranks, and merging the parts exactly.

A stage's selection of ``n`` images is cut into blocks of :func:`block_rows` rows, a size
that depends on ``n`` alone, so blocks finished by one world size are reused by any other.
Rank ``r`` of ``k`` takes the ``r``-th of ``k`` contiguous runs of blocks: no padding and no
image twice (torch's ``DistributedSampler`` pads by repeating images, which biases every
mean). Each rank streams its per-image arrays into a :class:`Sink`, which writes a block's
part once its rows are all there::

    FOLDER/.parts/<key>/<a>-<b>/<name>.npy   (arrays of rows a..b-1, plus "row" and "id")
    FOLDER/.parts/<key>/<a>-<b>/done         (written last)

so an interrupted run resumes block by block. :meth:`Parts.merge` checks that the finished
blocks cover ``0..n-1`` once each and that every part's image ids are the selection's, in
order, and refuses otherwise; it returns the arrays concatenated in row order, exactly what
one process computes, from which rank 0 writes the stage's files as one process would.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from saliency.atomic import atomic_write_text

PARTS = ".parts"
BLOCK_MAX = 512  # rows per block at most
BLOCKS_FOR = 256  # a selection is cut into about this many blocks (fewer when small)


class MergeError(ValueError):
    """The parts do not make the selection: a gap, an overlap or another image."""


def block_rows(n: int) -> int:
    """Rows per block for a selection of ``n``: about ``n / 256``, 1 to 512."""
    return max(1, min(BLOCK_MAX, -(-n // BLOCKS_FOR)))


def blocks(n: int) -> list[tuple[int, int]]:
    """The blocks ``[(a, b), ...]`` of a selection of ``n`` rows, in order."""
    step = block_rows(n)
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def assigned(n: int, rank: int, size: int) -> list[tuple[int, int]]:
    """Rank ``rank``'s blocks among ``size``: a contiguous run, the runs as even as blocks
    allow (a rank has none when there are fewer blocks than ranks)."""
    cut = blocks(n)
    k = len(cut)
    return cut[k * rank // size : k * (rank + 1) // size]


def key_of(*parts: object) -> str:
    """A short hash of what decides a stage's per-image results (JSON-able parts)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


class Parts:
    """The parts of one sharded computation: ``folder/.parts/<key>/``.

    ``ids``: the selection's image ids in row order (paths), checked unique; ``key``: what
    decides the results (:func:`key_of`); parts under another key are stale."""

    def __init__(self, folder: str | Path, key: str, ids: Sequence[str]):
        self.root = Path(folder) / PARTS
        self.dir = self.root / key
        self.ids = np.asarray([str(i) for i in ids], dtype=str)
        self.n = len(self.ids)
        unique, counts = np.unique(self.ids, return_counts=True)
        if (counts > 1).any():
            dup = unique[counts > 1][0]
            raise MergeError(f"the selection holds image {dup} twice; image ids must be unique")

    def exists(self) -> bool:
        """Whether any part of this key is on disk (an earlier, interrupted run)."""
        return self.dir.is_dir()

    def prepare(self) -> None:
        """Remove parts of other keys (stale settings) and make this key's folder. Rank 0
        calls it before the ranks start."""
        if self.root.is_dir():
            for old in self.root.iterdir():
                if old.name != self.dir.name:
                    shutil.rmtree(old, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)

    def finished(self) -> list[tuple[int, int]]:
        """The blocks whose parts are complete, in order."""
        if not self.dir.is_dir():
            return []
        out = []
        for p in self.dir.iterdir():
            if (p / "done").is_file():
                a, _, b = p.name.partition("-")
                out.append((int(a), int(b)))
        return sorted(out)

    def todo(self, rank: int, size: int, skip_below: int = 0) -> np.ndarray:
        """The rows rank ``rank`` of ``size`` still has to compute: its blocks without a
        finished part, less blocks wholly below ``skip_below`` (stored elsewhere)."""
        done = set(self.finished())
        mine = [(a, b) for a, b in assigned(self.n, rank, size) if (a, b) not in done]
        rows = [np.arange(a, b) for a, b in mine if b > skip_below]
        return np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)

    def sink(self, rows: np.ndarray) -> Sink:
        """A :class:`Sink` for ``rows`` (from :meth:`todo`)."""
        return Sink(self, rows)

    def write(self, a: int, b: int, arrays: dict[str, np.ndarray]) -> None:
        """Store block ``[a, b)``: ``arrays`` of ``b - a`` rows each; ``row`` and ``id``
        are added. ``done`` is written last, so a killed write leaves no finished part."""
        folder = self.dir / f"{a:09d}-{b:09d}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        arrays = {"row": np.arange(a, b), "id": self.ids[a:b]} | dict(arrays)
        for name, value in arrays.items():
            if len(value) != b - a:
                raise ValueError(f"part {a}-{b}: {name} has {len(value)} rows, not {b - a}")
            np.save(folder / f"{name}.npy", np.ascontiguousarray(value), allow_pickle=False)
        atomic_write_text(folder / "done", json.dumps(sorted(arrays)))

    def read(self, a: int, b: int, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Block ``[a, b)``'s arrays (with ``row`` and ``id``), or only ``names``."""
        folder = self.dir / f"{a:09d}-{b:09d}"
        names = names or json.loads((folder / "done").read_text())
        return {k: np.load(folder / f"{k}.npy", allow_pickle=False) for k in names}

    def check(self, skip_below: int = 0) -> list[tuple[int, int]]:
        """The finished blocks, after checking that they cover rows ``0..n-1`` once each and
        that each holds the selection's images in order; :class:`MergeError` otherwise.
        ``skip_below``: rows stored elsewhere; coverage starts at the block holding it."""
        start = next((a for a, b in blocks(self.n) if b > skip_below), self.n)
        found, at = [(a, b) for a, b in self.finished() if b > skip_below], start
        for a, b in found:
            if a < at:
                raise MergeError(f"parts overlap at rows {a}-{min(b, at) - 1} in {self.dir}: "
                                 "rows would be counted twice; refusing to merge")  # fmt: skip
            if a > at:
                raise MergeError(f"rows {at}-{a - 1} have no part in {self.dir}; refusing "
                                 "to merge (run the command again to compute them)")  # fmt: skip
            part = self.read(a, b, ("row", "id"))  # not the maps: they are read once, later
            if not np.array_equal(part["row"], np.arange(a, b)) or not np.array_equal(
                part["id"], self.ids[a:b]
            ):
                raise MergeError(f"part {a}-{b} in {self.dir} holds other images than the "
                                 "selection's rows; refusing to merge")  # fmt: skip
            at = b
        if at != self.n:
            raise MergeError(f"rows {at}-{self.n - 1} have no part in {self.dir}; refusing to "
                             "merge (run the command again to compute them)")  # fmt: skip
        return found

    def stream(self, skip_below: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """The checked parts' arrays block by block, in row order (large arrays: maps)."""
        for a, b in self.check(skip_below):
            yield self.read(a, b)

    def merge(self) -> dict[str, np.ndarray]:
        """Every array concatenated in row order over the checked parts (without ``row``
        and ``id``)."""
        got: dict[str, list[np.ndarray]] = {}
        for part in self.stream():
            for k, v in part.items():
                got.setdefault(k, []).append(v)
        return {k: np.concatenate(v) for k, v in got.items() if k not in ("row", "id")}

    def clear(self) -> None:
        """Remove every part (after the merged files are written)."""
        shutil.rmtree(self.root, ignore_errors=True)


class MemorySink:
    """Per-image arrays kept in memory batch by batch: one process without parts (and the
    buffer of a :class:`Sink`)."""

    def __init__(self) -> None:
        self._rows: list[np.ndarray] = []
        self._arrays: dict[str, list[np.ndarray]] = {}

    def add(self, rows: np.ndarray, **arrays: np.ndarray) -> None:
        """One batch: ``rows [B]`` (row numbers) and arrays of ``B`` rows."""
        self._rows.append(np.asarray(rows))
        for k, v in arrays.items():
            self._arrays.setdefault(k, []).append(np.asarray(v))

    def arrays(self, n: int) -> dict[str, np.ndarray]:
        """The arrays in row order; every row ``0..n-1`` once, else ``ValueError``."""
        rows = np.concatenate(self._rows) if self._rows else np.zeros(0, dtype=np.int64)
        if not np.array_equal(np.sort(rows), np.arange(n)):
            raise ValueError("the batches did not cover every row once")
        order = np.argsort(rows, kind="stable")
        return {k: np.concatenate(v)[order] for k, v in self._arrays.items()}


class Sink(MemorySink):
    """Collects one rank's per-image arrays batch by batch (rows increasing) and writes each
    block's part as soon as its rows are all there."""

    def __init__(self, parts: Parts, rows: np.ndarray):
        super().__init__()
        self.parts = parts
        mine = set(int(r) for r in rows)
        self.blocks = [(a, b) for a, b in blocks(parts.n) if a in mine]

    def add(self, rows: np.ndarray, **arrays: np.ndarray) -> None:
        """One batch: ``rows [B]`` (row numbers, increasing) and arrays of ``B`` rows."""
        super().add(rows, **arrays)
        self._flush()

    def _flush(self) -> None:
        """Write every block the buffered rows complete; the buffer is joined only then (a
        block of maps is large: joining it at every batch would copy it again and again)."""
        last = next((int(r[-1]) for r in reversed(self._rows) if len(r)), None)
        if last is None or not self.blocks or last < self.blocks[0][1] - 1:
            return
        rows = np.concatenate(self._rows)
        arrays = {k: np.concatenate(v) for k, v in self._arrays.items()}
        while self.blocks and len(rows) and rows[-1] >= self.blocks[0][1] - 1:
            a, b = self.blocks.pop(0)
            take = (rows >= a) & (rows < b)
            if not np.array_equal(rows[take], np.arange(a, b)):
                raise ValueError(f"block {a}-{b} was given rows out of order")
            self.parts.write(a, b, {k: v[take] for k, v in arrays.items()})
            keep = rows >= b
            rows, arrays = rows[keep], {k: v[keep] for k, v in arrays.items()}
        self._rows, self._arrays = [rows], {k: [v] for k, v in arrays.items()}

    def close(self) -> None:
        """Check that every block was written."""
        if self.blocks:
            a, b = self.blocks[0]
            raise ValueError(f"block {a}-{b} was not completed")


def run_sharded(
    parts: Parts,
    rank: int,
    size: int,
    compute: Callable[[np.ndarray, Sink], None],
    barrier: Callable[[], None],
    skip_below: int = 0,
) -> bool:
    """Compute this rank's rows through ``compute(rows, sink)`` into parts, then wait for
    every rank. Returns whether this rank is the one to merge (rank 0). Rank 0 clears stale
    parts first; ``barrier`` waits for every rank (a no-op in one process)."""
    if rank == 0:
        parts.prepare()
    barrier()
    rows = parts.todo(rank, size, skip_below)
    sink = parts.sink(rows)
    if len(rows):
        compute(rows, sink)
    sink.close()
    barrier()
    return rank == 0


@dataclass
class Gathered:
    """Per-image arrays of a whole selection in row order; ``parts`` (when sharded) are
    cleared by :meth:`clear` once the stage's files are written."""

    arrays: dict[str, np.ndarray]
    parts: Parts | None = None

    def clear(self) -> None:
        if self.parts is not None:
            self.parts.clear()


def gather(
    folder: str | Path,
    key: Callable[[], str],
    ids: Sequence[str],
    rank: int,
    size: int,
    compute: Callable[[np.ndarray, MemorySink], None],
) -> Gathered | None:
    """Per-image arrays of the selection ``ids`` by ``compute(rows, sink)`` (which calls
    ``sink.add(rows, **arrays)`` batch by batch, rows increasing): in one process and memory
    when ``size`` is 1 and no parts of ``key()`` wait under ``folder``; else sharded over the
    ranks into parts (:func:`run_sharded`) and merged on rank 0. ``None`` on the other ranks.
    ``key`` is called only when parts may be involved (it may hash a checkpoint)."""
    from saliency.distributed import barrier

    involved = size > 1 or (Path(folder) / PARTS).is_dir()
    parts = Parts(folder, key() if involved else "none", ids)
    if size == 1 and not parts.exists():
        sink = MemorySink()
        compute(np.arange(parts.n), sink)
        parts.clear()  # parts of other settings, if an interrupted run left any
        return Gathered(sink.arrays(parts.n))
    if not run_sharded(parts, rank, size, compute, barrier):
        return None
    return Gathered(parts.merge(), parts)
