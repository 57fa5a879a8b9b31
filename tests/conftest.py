"""Shared fixtures: small synthetic data sets rendered once per test session.

`make test` runs the suite in two pytest-xdist workers (``-n 2 --dist loadfile``). Each
worker keeps torch to one thread (two workers of two threads each on two cores slow every
torch test 8-13x); a test file runs whole in one worker, so its module fixtures are built
once (the session's data sets and trained run once in all, by :func:`shared`), and the
longest files start first.
(``--dist loadgroup`` would allow finer groups, but pytest-xdist 3.8 under pytest 9.2 ignores
``xdist_group`` marks: measured, every group was split over both workers.)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from saliency.data.imageio import write_rgb
from saliency.data.synth.config import SynthConfig
from saliency.data.synth.generate import generate

# the longest files, longest first: each starts as soon as a worker is free, so
# the short files fill the gaps around them. A file not listed runs after these, in order.
LONGEST_FIRST = (
    "test_planted_cue",
    "test_torchrun",
    "test_demo",
    "test_figures",
    "test_validate",
    "test_synth",
    "test_adopt",
    "test_attributes",
    "test_nonsquare",
    "test_null_promises",
    "test_models",
    "test_explain_average",
    "test_ddp_train",
)


# an unexpected error in a test's command shows its traceback (saliency.cli.crash): tests of
# the one-line report unset this
os.environ.setdefault("SALIENCY_DEBUG", "1")


def pytest_configure(config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: one thread, here and in children
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = "1"
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items) -> None:
    """The longest files first."""
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__, len(rank)))


def shared(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` once for the whole session: the first xdist worker to ask builds it
    under a lock in the folder the workers share; the others wait for it and reuse it (the
    data are deterministic, and every test copies what it changes)."""
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this session's folder, above each worker's own
    out, done = root / f"shared_{name}", root / f"shared_{name}.done"
    with open(root / f"shared_{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)  # a build that failed half way
            build(out)
            done.touch()
    return out


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """240 faces at 64 px with a brows cue, written by the generator (2 workers)."""
    cfg = SynthConfig(n=240, size=64, seed=3, cues={"brows": 1.0})
    return shared(tmp_path_factory, "synth_small", lambda out: generate(cfg, out, workers=2))


def faces_manifest(synth_small: Path, folder: Path, n: int) -> Path:
    """A manifest of the first ``n`` of ``synth_small``'s faces in ``folder``, all in the test
    split, paths and masks absolute (what adopted runs are given)."""
    from saliency.data.manifest import read_manifest, write_manifest

    m = read_manifest(synth_small / "manifest.csv")
    df = m.df.head(n).copy()
    df["path"] = [str(m.abspath(p)) for p in df["path"]]
    df["mask"] = [str(m.abspath(p)) for p in df["mask"]]
    df["split"] = "test"
    return write_manifest(df, folder / "manifest.csv")


def model_inputs(manifest: Path, pre):
    """The manifest's images as the normalized inputs a model of preprocessing ``pre``
    classifies ``[N, 3, S, S]``."""
    import torch

    from saliency.data.manifest import read_manifest
    from saliency.models.preprocess import load_resized, model_input

    paths = read_manifest(manifest).df["path"]
    return model_input(torch.from_numpy(np.stack([load_resized(p, pre) for p in paths])), pre)


@pytest.fixture
def tiny_image():
    """Write a small random RGB image to a path; returns the writer."""

    def write(path: Path, size: tuple[int, int] = (24, 20), seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_rgb(path, rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        return path

    return write


@pytest.fixture(scope="session")
def synth_tiny(tmp_path_factory) -> Path:
    """160 faces at 32 px with a strong brows cue: enough to train a model for a few seconds."""
    cfg = SynthConfig(n=160, size=32, seed=5, cues={"brows": 1.0})
    return shared(tmp_path_factory, "synth_tiny", lambda out: generate(cfg, out, workers=0))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, synth_tiny) -> Path:
    """A ResNet-18 trained for two epochs on ``synth_tiny`` through the CLI, then evaluated
    (read only: tests that write into a run copy it)."""
    from saliency.cli import main

    def build(run: Path) -> None:
        argv = ["train", "--manifest", str(synth_tiny / "manifest.csv"), "--out", str(run),
                "--size", "32", "--epochs", "2", "--batch-size", "32", "--workers", "0",
                "--device", "cpu"]  # fmt: skip
        # (CUDA's kernels are not deterministic; every trained test pins the CPU)
        assert main(argv) == 0
        assert main(["evaluate", "--run", str(run), "--workers", "0", "--device", "cpu"]) == 0

    return shared(tmp_path_factory, "tiny_run", build)


BROWS_SIZE = 64


def brows_world_labels(size: int = BROWS_SIZE) -> np.ndarray:
    """One face layout for every image: all six regions, far enough apart at 64 px."""
    from saliency.data.regions import REGION_CODES as C

    lab = np.zeros((size, size), np.uint8)
    lab[12:60, 12:52] = C["skin"]
    lab[2:12, 10:54] = C["hair"]
    lab[21:25, 17:28] = lab[21:25, 36:47] = C["brows"]
    lab[29:32, 19:27] = lab[29:32, 37:45] = C["eyes"]
    lab[34:42, 29:35] = C["nose"]
    lab[47:51, 24:40] = C["mouth"]
    return lab


def brows_face(lab: np.ndarray, dark: bool, rng: np.random.Generator) -> np.ndarray:
    """One face ``uint8 [H, W, 3]`` on the region layout ``lab``: a noise background, flat
    skin, eyes, nose and mouth, hair of a random shade, and brows dark (male: 30) or light
    (female: 225, lighter than the skin), each with a little noise."""
    from saliency.data.regions import REGION_CODES as C

    img = rng.integers(0, 256, (*lab.shape, 3)).astype(np.float64)  # background noise
    for region, level in {"skin": 175, "eyes": 50, "nose": 150, "mouth": 110}.items():
        m = lab == C[region]
        img[m] = level + rng.normal(0, 12, (m.sum(), 3))
    hair = lab == C["hair"]
    img[hair] = rng.uniform(30, 220) + rng.normal(0, 10, (hair.sum(), 3))
    brows = lab == C["brows"]
    level = (30 if dark else 225) + rng.uniform(-15, 15)
    img[brows] = level + rng.normal(0, 4, (brows.sum(), 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def brows_world(tmp_path_factory) -> Path:
    """48 faces on one layout whose class shows only in the brows' darkness: male brows dark,
    female brows lighter than the skin; a third of group B's women have dark brows (the hard
    cell B_F, whose errors the hand-weighted reader makes). Every split is ``test``."""
    import pandas as pd

    from saliency.data.manifest import write_manifest

    out = tmp_path_factory.mktemp("brows_world")
    lab = brows_world_labels()
    write_rgb(out / "mask.png", lab)
    (out / "images").mkdir()
    rng = np.random.default_rng(21)
    rows = []
    for i in range(48):
        label = ("female", "male")[i % 2]
        group = "AB"[(i // 2) % 2]
        flipped = group == "B" and label == "female" and (i // 4) % 3 == 0
        path = f"images/{i:03d}.png"
        write_rgb(out / path, brows_face(lab, label == "male" or flipped, rng))
        rows.append({"path": path, "label": label, "group": group, "split": "test",
                     "mask": "mask.png", "flipped": flipped})  # fmt: skip
    write_manifest(pd.DataFrame(rows), out / "manifest.csv")
    return out


@pytest.fixture(scope="session")
def brows_reader_run(tmp_path_factory, brows_world) -> Path:
    """A run whose model is the hand-weighted region reader of the brows (no training)."""
    import torch

    from saliency.data.regions import REGION_CODES
    from saliency.models.checkpoint import save_checkpoint
    from saliency.models.preprocess import Preprocessing
    from saliency.models.reader_run import reader_checkpoint

    run = tmp_path_factory.mktemp("runs") / "brows_reader"
    template = torch.from_numpy(brows_world_labels() == REGION_CODES["brows"]).float()
    ckpt = reader_checkpoint(
        brows_world / "manifest.csv", template, Preprocessing(size=BROWS_SIZE), weight=400.0
    )
    save_checkpoint(run / "checkpoints" / "best.pt", ckpt)
    return run


ODD = 23  # an odd number of faces: two ranks get unequal shards


@pytest.fixture(scope="session")
def odd_reader_run(tmp_path_factory, brows_world) -> Path:
    """The brows reader's run over the first 23 of ``brows_world``'s faces (all ``test``, with
    masks), for the sharding tests (read only: tests copy it)."""
    import pandas as pd
    import torch

    from saliency.data.regions import REGION_CODES
    from saliency.models.checkpoint import save_checkpoint
    from saliency.models.preprocess import Preprocessing
    from saliency.models.reader_run import reader_checkpoint

    def build(root: Path) -> None:
        shutil.copytree(brows_world, root / "data")
        df = pd.read_csv(root / "data" / "manifest.csv", keep_default_na=False)
        df.head(ODD).to_csv(root / "data" / "manifest.csv", index=False)
        template = torch.from_numpy(brows_world_labels() == REGION_CODES["brows"]).float()
        pre = Preprocessing(size=BROWS_SIZE)
        ckpt = reader_checkpoint(root / "data" / "manifest.csv", template, pre, 400.0)
        save_checkpoint(root / "run" / "checkpoints" / "best.pt", ckpt)

    return shared(tmp_path_factory, "odd_reader_run", build) / "run"


def mark_done(study, stages) -> None:
    """Record ``stages`` of ``study`` in its ``study.json`` as done with their current
    settings, and make those of their outputs that do not exist as placeholders (so the
    runner's plan sees them done)."""
    from saliency.study import runner

    fps, state = runner.fingerprints(study), runner.read_state(study)
    for stage in stages:
        for p in runner._outputs(study, stage):
            if not p.exists():
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text("placeholder")
        state[stage] = {"settings": study.stages[stage], "fingerprint": fps[stage],
                        "status": "done"}  # fmt: skip
    runner._write_state(study, state)
