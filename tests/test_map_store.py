"""The map store's writer: resumable appends by explicit rows, own columns, clash and finish."""

import json

import numpy as np
import pandas as pd
import pytest

from saliency.methods.store import PROGRESS, MapStore, read_maps


def _rows(folder, n: int) -> pd.DataFrame:
    paths = [str(folder / f"img{i}.png") for i in range(n)]
    labels = ["female", "male"] * (n // 2)
    return pd.DataFrame({"path": paths, "label": labels, "group": "A", "split": "test"})


def _batch(rows: np.ndarray, size: int = 4):
    maps = {m: np.full((len(rows), size, size), r, np.float32) for m, r in (("a", 1), ("b", 2))}
    maps = {m: v * rows[:, None, None] for m, v in maps.items()}
    logits = (rows[:, None] - 2.5).astype(np.float32)  # one logit
    return maps, logits, (logits[:, 0] > 0).astype(np.int64), {"b_err": rows * 0.5}


def test_store_resumes_from_its_last_checkpoint_and_writes_index_and_meta(tmp_path):
    n, folder = 6, tmp_path / "saliency" / "test"
    keys, columns = {"a": "ka", "b": "kb"}, {"b": ("b_err",)}
    store = MapStore(folder, n, 4, 1, chunk=2)
    assert store.resume(keys, columns) == {"a": 0, "b": 0} and store.start == 0
    for lo in (0, 2):  # two batches of two rows: each one a checkpoint
        store.append(np.arange(lo, lo + 2), *_batch(np.arange(lo, lo + 2)))
    assert json.loads((folder / "b" / PROGRESS).read_text()) == {"key": "kb", "done": 4, "n": n}
    assert not (folder / "a" / "index.csv").exists()  # interrupted: no index yet

    again = MapStore(folder, n, 4, 1, chunk=2)
    assert again.resume(keys, columns) == {"a": 4, "b": 4} and again.start == 4
    again.append(np.arange(4, 6), *_batch(np.arange(4, 6)))
    meta = {m: {"method": m} for m in keys}
    again.finish(_rows(tmp_path, n), tmp_path / "manifest.csv", ["female", "male"], meta)
    maps, index, stored = read_maps(folder / "b")
    np.testing.assert_array_equal(maps[:, 0, 0], 2 * np.arange(n))
    assert stored == {"method": "b"} and index["path"].tolist()[0] == "img0.png"
    np.testing.assert_allclose(index["b_err"], np.arange(n) * 0.5)
    assert index["target"].tolist() == ["female"] * 3 + ["male"] * 3
    assert "b_err" not in read_maps(folder / "a")[1].columns
    assert np.load(folder / "a" / ".scalars.npy").shape == (n, 2)  # logit, target

    done = MapStore(folder, n, 4, 1)
    assert done.resume(keys, columns) == {"a": n, "b": n} and done.methods == []
    with pytest.raises(ValueError, match="a, b maps made with other settings"):
        MapStore(folder, n, 4, 1).resume({"a": "new", "b": "new"})
    fresh = MapStore(folder, n, 4, 1)
    assert fresh.resume({"a": "new"}, overwrite=True) == {"a": 0} and fresh.methods == ["a"]
