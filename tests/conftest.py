"""Shared fixtures: small synthetic data sets rendered once per test session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from saliency.data.imageio import write_rgb
from saliency.data.synth.config import SynthConfig
from saliency.data.synth.generate import generate


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """240 faces at 64 px with a brows cue, written by the generator (2 workers)."""
    out = tmp_path_factory.mktemp("synth_small")
    generate(SynthConfig(n=240, size=64, seed=3, cues={"brows": 1.0}), out, workers=2)
    return out


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
    out = tmp_path_factory.mktemp("synth_tiny")
    generate(SynthConfig(n=160, size=32, seed=5, cues={"brows": 1.0}), out, workers=0)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, synth_tiny) -> Path:
    """A ResNet-18 trained for two epochs on ``synth_tiny`` through the CLI, then evaluated."""
    from saliency.cli import main

    run = tmp_path_factory.mktemp("runs") / "tiny"
    argv = [
        "train",
        "--manifest",
        str(synth_tiny / "manifest.csv"),
        "--out",
        str(run),
        "--size",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--workers",
        "0",
    ]
    assert main(argv) == 0
    assert main(["evaluate", "--run", str(run), "--workers", "0"]) == 0
    return run
