"""Sharding without torchrun: the ranks of a world run one after another in this process
(rank 0 last, as the one that merges), so the parts, their merge and its refusals are
proven exactly and fast. ``test_torchrun.py`` runs the same stages under real processes.

The run is the hand-weighted brows reader on 23 of ``brows_world``'s faces: an odd count,
so two ranks get unequal shards and the blocks (:func:`saliency.parts.block_rows`) are
single rows. (evaluate, ablate and share under 2 real processes: ``test_torchrun.py``.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ODD

from saliency.parts import MergeError, Parts, assigned, blocks, key_of
from saliency.stages import registry
from saliency.stages.contract import StageContext

N = ODD


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def _world(stage: str, cfg, run: Path, size: int):
    """Stage ``stage`` as ``size`` ranks, rank 0 last; returns rank 0's result."""
    for rank in reversed(range(size)):
        ctx = StageContext(run=run, device="cpu", workers=0, rank=rank, world_size=size)
        res = registry.get(stage).run(ctx.fill(cfg), ctx)
    return res


def test_blocks_cover_once_without_padding():
    for n in (1, 2, 47, 255, 256, 257, 1000, 200_000):
        cut = blocks(n)
        assert cut[0][0] == 0 and cut[-1][1] == n
        assert all(b == a2 for (_, b), (a2, _) in zip(cut, cut[1:], strict=False))
        for size in (1, 2, 3, 8):
            mine = [assigned(n, r, size) for r in range(size)]
            assert sum(mine, []) == cut  # every block once, in order, no padding
            counts = [sum(b - a for a, b in m) for m in mine]
            assert sum(counts) == n


def _explain_cfg(run: Path):
    from saliency.configs.maps import ExplainConfig
    from saliency.methods.ig_settings import IGConfig

    return ExplainConfig(methods=["cam", "gradcam", "ig"], ig=IGConfig(n_steps=8, baseline="blur"),
                         batch_size=8)  # fmt: skip


def _maps(run: Path, method: str):
    from saliency.methods.store import read_maps

    maps, index, meta = read_maps(run / "saliency" / "test" / method)
    return np.asarray(maps), index, meta


@pytest.fixture(scope="module")
def explained_one(odd_reader_run, tmp_path_factory) -> Path:
    """The one-process explain of the odd run (the reference)."""
    one = _copy(odd_reader_run, tmp_path_factory.mktemp("explain") / "one")
    _world("explain", _explain_cfg(one), one, 1)
    return one


def _same_maps(a: Path, b: Path) -> None:
    for method in ("cam", "gradcam", "ig"):
        ma, ia, meta_a = _maps(a, method)
        mb, ib, meta_b = _maps(b, method)
        assert ma.shape == (N, 64, 64)
        np.testing.assert_allclose(mb, ma, rtol=1e-5, atol=1e-6 * np.abs(ma).max())
        pd.testing.assert_frame_equal(ia.drop(columns=[c for c in ia if c.startswith(("logit",
                                      "prob_", "ig_"))]),
                                      ib.drop(columns=[c for c in ib if c.startswith(("logit",
                                      "prob_", "ig_"))]))  # fmt: skip
        np.testing.assert_allclose(ib["logit"], ia["logit"], rtol=1e-6, atol=1e-6)
        for meta in (meta_a, meta_b):
            meta["checkpoint"].pop("path")  # the runs' own folders
        assert meta_a == meta_b
        assert not (b / "saliency" / "test" / ".parts").exists()


def test_explain_two_ranks_equal_one(explained_one, odd_reader_run, tmp_path):
    two = _copy(odd_reader_run, tmp_path / "two")
    res = _world("explain", _explain_cfg(two), two, 2)
    assert res.value.n == N
    _same_maps(explained_one, two)


def test_explain_resumes_the_parts_of_an_interrupted_world(explained_one, odd_reader_run, tmp_path):
    # rank 1 of 3 finished its shard; ranks 0 and 2 were killed. A one-process run reuses
    # rank 1's parts (computing only the rest) and gives the one-process files.
    run = _copy(odd_reader_run, tmp_path / "run")
    ctx = StageContext(run=run, device="cpu", workers=0, rank=1, world_size=3)
    assert registry.get("explain").run(_explain_cfg(run), ctx).value is None
    finished = Parts(run / "saliency/test", "unused", [str(i) for i in range(N)])
    parts = next(p for p in finished.root.iterdir())
    assert len(list(parts.iterdir())) == sum(b - a for a, b in assigned(N, 1, 3))
    counted = []
    step = lambda n=1: counted.append(n)  # noqa: E731
    ctx = StageContext(run=run, device="cpu", workers=0, progress=lambda name, total: step)
    registry.get("explain").run(_explain_cfg(run), ctx)
    assert sum(counted) == N - sum(b - a for a, b in assigned(N, 1, 3))  # only the rest
    _same_maps(explained_one, run)


def test_merge_refuses_overlaps_gaps_and_other_images(tmp_path):
    ids = [f"img{i}.png" for i in range(5)]
    parts = Parts(tmp_path, key_of("t"), ids)
    parts.prepare()
    for a, b in blocks(5):
        parts.write(a, b, {"x": np.arange(a, b, dtype=float)})
    np.testing.assert_array_equal(parts.merge()["x"], np.arange(5.0))
    # a duplicated shard: rows 1-2 stored again as one part, overlapping blocks 1 and 2
    dup = parts.dir / f"{1:09d}-{3:09d}"
    dup.mkdir()
    for f in (parts.dir / f"{1:09d}-{2:09d}").iterdir():
        shutil.copy(f, dup / f.name)
    with pytest.raises(MergeError, match="overlap"):
        parts.merge()
    shutil.rmtree(dup)
    shutil.rmtree(parts.dir / f"{3:09d}-{4:09d}")  # a missing shard
    with pytest.raises(MergeError, match="rows 3-3 have no part"):
        parts.merge()
    other = Parts(tmp_path, key_of("t"), [*ids[:3], "other.png", ids[4]])
    other.write(3, 4, {"x": np.array([3.0])})
    with pytest.raises(MergeError, match="other images"):
        parts.merge()  # block 3 holds other.png where the selection has img3.png
    with pytest.raises(MergeError, match="twice"):
        Parts(tmp_path, key_of("t"), [*ids, ids[0]])


def test_sink_writes_each_block_once_from_batches_that_straddle_them(tmp_path):
    # 600 rows: blocks of 3; batches of 2 and 5 rows cut across the blocks' edges
    ids = [f"img{i}" for i in range(600)]
    parts = Parts(tmp_path, key_of("sink"), ids)
    assert blocks(600)[:2] == [(0, 3), (3, 6)]
    rows = parts.todo(1, 2)  # rank 1's half: rows 300..599
    sink = parts.sink(rows)
    start = 0
    for step in [2, 5] * 100:
        batch = rows[start : start + step]
        if not len(batch):
            break
        sink.add(batch, x=batch * 10.0, y=np.stack([batch, -batch], 1))
        start += step
        done = parts.finished()
        assert all(b <= batch[-1] + 1 for _, b in done)  # no block before its rows are in
    sink.close()
    assert parts.finished() == [(a, b) for a, b in blocks(600) if a >= 300]
    for a, b in parts.finished():
        part = parts.read(a, b)
        np.testing.assert_array_equal(part["x"], np.arange(a, b) * 10.0)
        np.testing.assert_array_equal(part["y"][:, 1], -np.arange(a, b))
        assert list(part["id"]) == ids[a:b]
