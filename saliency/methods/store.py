"""The map store: ``RUN/saliency/<split>/<method>/`` (maps.npy, index.csv, meta.json).

:class:`MapStore` writes them (the explain stage drives it, :mod:`saliency.stages.explain`);
every analysis reads them through :func:`read_maps` and :func:`read_index`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.atomic import atomic_write_json, atomic_write_text
from saliency.imsize import InputSize, hw
from saliency.rundir import saliency_dir

PROGRESS = ".progress.json"  # {"key", "done", "n"}: rows 0..done-1 are stored under key
SCALARS = ".scalars.npy"  # float32 [n, n_outputs + 1 + columns]: logits, target, own columns


def read_index(folder: str | Path) -> tuple[pd.DataFrame, dict]:
    """One method's index.csv and meta.json (without opening the maps)."""
    folder = Path(folder)
    if not (folder / "meta.json").is_file():
        raise FileNotFoundError(f"no maps in {folder}; run `saliency explain` first")
    index = pd.read_csv(folder / "index.csv", keep_default_na=False)
    return index, json.loads((folder / "meta.json").read_text())


def read_maps(folder: str | Path) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Open one method's stored maps (memory-mapped, read-only), its index and meta."""
    index, meta = read_index(folder)
    return np.load(Path(folder) / "maps.npy", mmap_mode="r"), index, meta


def absolute_paths(index: pd.DataFrame, meta: dict) -> list[str]:
    """The images of an index as resolved absolute paths (index paths are relative to the
    manifest the maps were made from), so maps of different runs pair up by image."""
    root = Path(meta["manifest"]).resolve().parent
    return [str((root / p).resolve()) for p in index["path"]]


def explained_methods(run: str | Path, split: str, asked: list[str] | None) -> list[str]:
    """The methods with stored maps under ``RUN/saliency/<split>``, or ``asked`` after
    checking each is there (an unknown one raises ``ValueError`` listing the valid ones)."""
    base = saliency_dir(run, split)
    present = sorted(p.parent.name for p in base.glob("*/meta.json"))
    if not present:
        raise FileNotFoundError(
            f"no maps under {base}; run `saliency explain --run {run} --split {split}` first"
        )
    for m in asked or []:
        if m not in present:
            raise ValueError(f"unknown method {m!r} for {base}; valid: {', '.join(present)}")
    return asked or present


class MapStore:
    """Writes one split's maps for several methods at once, streamed and resumable.

    Per method, under ``folder/<method>/``: ``maps.npy`` (float32 ``[n, h, w]``,
    memory-mapped, raw), ``.scalars.npy`` (float32 ``[n, n_outputs + 1 + len(columns)]``:
    each row's logits, its target class index, then the method's own ``index.csv`` columns),
    ``.progress.json`` and, from :meth:`finish`, ``index.csv`` and ``meta.json``. Rows are
    index.csv's row numbers ``0..n-1``, given explicitly to :meth:`append`; they arrive in
    increasing order, so after a checkpoint at ``upto`` every row below it is on disk and a
    rerun under the same key continues from there. Use: :meth:`resume`, then :meth:`append`
    per batch, then :meth:`finish`.
    """

    def __init__(
        self, folder: str | Path, n: int, size: InputSize, n_outputs: int, chunk: int = 256
    ):
        self.folder, self.n, self.hw, self.n_outputs = Path(folder), n, hw(size), n_outputs
        self.chunk = chunk  # rows between checkpoints
        self._open: dict[str, dict] = {}  # method -> key, done, columns, maps, scalars
        self._unflushed = 0

    def resume(
        self,
        keys: Mapping[str, str],
        columns: Mapping[str, tuple[str, ...]] | None = None,
        overwrite: bool = False,
        types: Mapping[str, Mapping[str, str]] | None = None,
    ) -> dict[str, int]:
        """Rows already stored per method of ``keys`` (method -> what decides its maps):
        ``n`` for one complete under the same key (left closed), else opens its files and
        gives the rows stored under that key (0 when new). Maps made under another key raise
        ``ValueError`` naming every such method, unless ``overwrite`` (they start afresh).
        ``columns``: each method's own ``index.csv`` columns; ``types``: per method, the numpy
        type a column is written with when it is not float (``int64``, ``bool``)."""
        done = self.peek(keys, overwrite)
        for m, key in keys.items():
            if done[m] < self.n or self.n == 0:
                own = tuple((columns or {}).get(m, ())), dict((types or {}).get(m, {}))
                self._open_method(m, key, done[m], *own)
        return done

    def peek(self, keys: Mapping[str, str], overwrite: bool = False) -> dict[str, int]:
        """What :meth:`resume` would find, without opening or changing anything: rows
        stored per method under its key (``ValueError`` for maps of another key unless
        ``overwrite``, then 0). Every rank of a sharded explain reads this."""
        done, clash = {}, []
        for m, key in keys.items():
            path = self.folder / m / PROGRESS
            state = json.loads(path.read_text()) if path.is_file() else None
            if state is not None and state["key"] == key:
                done[m] = int(state["done"])
            elif state is not None and not overwrite:
                clash.append(m)
            else:
                done[m] = 0
        if clash:
            raise ValueError(
                f"{self.folder} holds {', '.join(clash)} maps made with other settings; pass "
                "--overwrite to replace them"
            )
        return done

    def _open_method(
        self, method: str, key: str, done: int, columns: tuple[str, ...], types: dict[str, str]
    ) -> None:
        (self.folder / method).mkdir(parents=True, exist_ok=True)
        mode = "r+" if done else "w+"
        self._open[method] = {
            "key": key,
            "done": done,
            "columns": columns,
            "types": types,
            "maps": np.lib.format.open_memmap(
                self.folder / method / "maps.npy", mode=mode, dtype=np.float32,
                shape=(self.n, *self.hw),
            ),
            "scalars": np.lib.format.open_memmap(
                self.folder / method / SCALARS, mode=mode, dtype=np.float32,
                shape=(self.n, self.n_outputs + 1 + len(columns)),
            ),
        }  # fmt: skip

    @property
    def methods(self) -> list[str]:
        """The methods being written (those :meth:`resume` opened), in order."""
        return list(self._open)

    @property
    def start(self) -> int:
        """The first row some open method still lacks (``n`` when none is open)."""
        return min((w["done"] for w in self._open.values()), default=self.n)

    def append(
        self,
        rows: np.ndarray,
        maps: Mapping[str, np.ndarray],
        logits: np.ndarray,
        target: np.ndarray,
        extras: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Store one batch for every open method: ``rows [B]`` (row numbers, increasing),
        ``maps[method] [B, h, w]``, ``logits [B, n_outputs]``, ``target [B]`` (class
        indices) and ``extras[column] [B]`` for the methods' own columns. Checkpoints after
        every ``chunk`` rows."""
        k = self.n_outputs
        for m, w in self._open.items():
            w["maps"][rows] = maps[m]
            w["scalars"][rows, :k] = logits
            w["scalars"][rows, k] = target
            for j, column in enumerate(w["columns"]):
                w["scalars"][rows, k + 1 + j] = extras[column]
        self._unflushed += len(rows)
        if self._unflushed >= self.chunk:  # rows arrive in order: all below rows[-1] are done
            self.checkpoint(int(rows[-1]) + 1)

    def checkpoint(self, upto: int) -> None:
        """Flush every open method's files and record rows ``0..upto-1`` as stored."""
        for m, w in self._open.items():
            w["maps"].flush()
            w["scalars"].flush()
            state = {"key": w["key"], "done": max(w["done"], upto), "n": self.n}
            atomic_write_json(self.folder / m / PROGRESS, state)
        self._unflushed = 0

    def finish(
        self, rows: pd.DataFrame, manifest: Path, classes: list[str], meta: Mapping[str, dict]
    ) -> None:
        """Checkpoint all ``n`` rows, then write each open method's ``index.csv`` (``rows``:
        the images in row order, with path, label, group, split; ``manifest``: the file their
        paths become relative to) and ``meta.json`` (``meta[method]``)."""
        self.checkpoint(self.n)
        for m, w in self._open.items():
            index = _index(w["scalars"], rows, manifest, classes, self.n_outputs, w["columns"],
                           w["types"])  # fmt: skip
            atomic_write_text(self.folder / m / "index.csv", index.to_csv(index=False))
            atomic_write_json(self.folder / m / "meta.json", meta[m])


def _index(
    scalars: np.ndarray,
    rows: pd.DataFrame,
    manifest: Path,
    classes: list[str],
    n_out: int,
    columns: tuple[str, ...],
    types: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """index.csv: one row per map (image, label, group, target, prediction, logits, the
    method's own columns, of ``types`` where not float) from the stored scalars
    ``[n, n_out + 1 + len(columns)]``."""
    from saliency.data.manifest import relative_path
    from saliency.models.predict import predictions_frame

    index = predictions_frame(rows, np.asarray(scalars[:, :n_out]), classes)
    index["path"] = [relative_path(p, manifest.parent) for p in index["path"]]
    index.insert(4, "target", np.asarray(classes, dtype=object)[scalars[:, n_out].astype(int)])
    for j, column in enumerate(columns):
        index[column] = scalars[:, n_out + 1 + j].astype((types or {}).get(column, np.float32))
    return index
