"""Training mechanics with scripted or exact inputs: balanced sampling, each augmentation,
early stopping, the plateau schedule and the rule that both wait while a model is at chance.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from saliency.binomial import at_chance, wilson
from saliency.data.manifest import read_manifest, write_manifest
from saliency.models.augment import augment
from saliency.models.recipe import Augmentation, TrainConfig
from saliency.models.train import Trainer

OFF = dict(hflip=0.0, rotation_deg=0.0, brightness=0.0, contrast=0.0)


def _config(manifest, out, **kw) -> TrainConfig:
    base = dict(size=32, batch_size=32, workers=0, device="cpu", epochs=3, seed=3)
    return TrainConfig(manifest=str(manifest), out=str(out), **{**base, **kw})


@pytest.fixture
def imbalanced(synth_tiny, tmp_path):
    """synth_tiny with three of every four men's training rows dropped."""
    df = read_manifest(synth_tiny / "manifest.csv").df.copy()
    df["path"] = [str(synth_tiny / p) for p in df["path"]]
    men = df.index[(df["label"] == "male") & (df["split"] == "train")]
    df = df.drop(men[np.arange(len(men)) % 4 != 0])
    write_manifest(df, tmp_path / "m.csv")
    return tmp_path / "m.csv"


def test_balanced_sampling_draws_classes_equally_and_plain_epochs_are_permutations(
    imbalanced, tmp_path
):
    plain = Trainer(_config(imbalanced, tmp_path / "a"))
    n = plain.train_rows.size
    y = plain.source_y[:n].numpy()
    assert 0.15 < y.mean() < 0.35  # about one man in five: imbalanced
    order = plain._order()
    assert sorted(order.tolist()) == list(range(n))  # each training image once
    balanced = Trainer(_config(imbalanced, tmp_path / "b", balanced=True))
    draws = np.concatenate([balanced._order() for _ in range(40)])
    assert len(draws) == 40 * n and draws.max() < n
    share = y[draws].mean()
    sd = math.sqrt(0.25 / len(draws))
    assert abs(share - 0.5) < 5 * sd, share  # classes drawn equally (5 standard errors)


def test_each_augmentation_does_what_it_says():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 16, 16) * 0.5 + 0.25  # away from 0 and 1: no clamping
    flipped = augment(x, Augmentation(**{**OFF, "hflip": 1.0}), gen)
    torch.testing.assert_close(flipped, x.flip(-1), rtol=0, atol=0)
    bright = augment(x, Augmentation(**{**OFF, "brightness": 0.2}), gen)
    ratio = (bright / x).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1], atol=1e-6)  # one factor per image
    assert ((ratio[:, 0] >= 0.8) & (ratio[:, 0] <= 1.2)).all() and ratio[:, 0].std() > 0
    contrast = augment(x, Augmentation(**{**OFF, "contrast": 0.2}), gen)
    gray = x.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(contrast.mean(dim=(1, 2, 3), keepdim=True), gray)
    dx, dc = (x - gray).flatten(1), (contrast - gray).flatten(1)
    factor = (dx * dc).sum(1, keepdim=True) / (dx * dx).sum(1, keepdim=True)  # least squares
    torch.testing.assert_close(dc, factor * dx, rtol=0, atol=1e-6)  # one factor per image
    assert ((factor >= 0.8) & (factor <= 1.2)).all() and factor.std() > 0


def test_rotation_turns_about_the_centre_by_at_most_the_bound():
    gen = torch.Generator().manual_seed(1)
    x = torch.zeros(8, 3, 65, 65)
    x[:, :, 32 - 2 : 32 + 3, 52 - 2 : 52 + 3] = 1.0  # a dot 20 px right of the centre
    out = augment(x, Augmentation(**{**OFF, "rotation_deg": 10.0}), gen)[:, 0]
    ys, xs = torch.meshgrid(torch.arange(65.0), torch.arange(65.0), indexing="ij")
    mass = out.sum(dim=(1, 2))
    cy, cx = (out * ys).sum((1, 2)) / mass, (out * xs).sum((1, 2)) / mass
    radius = torch.hypot(cy - 32, cx - 32)
    angle = torch.rad2deg(torch.atan2(cy - 32, cx - 32))
    assert torch.allclose(radius, torch.full_like(radius, 20.0), atol=0.5)
    assert (angle.abs() <= 10.0 + 0.5).all() and angle.abs().max() > 2.0  # it does turn


def _scripted(trainer: Trainer, losses, accuracies) -> None:
    """Replace the epochs' work by a script of validation losses and accuracies."""
    script = iter(zip(losses, accuracies, strict=True))
    trainer.train_epoch = lambda step=None: (0.7, 0.5)
    trainer.validate = lambda: next(script)


def test_early_stopping_and_plateau_count_only_after_the_model_leaves_chance(synth_tiny, tmp_path):
    manifest = synth_tiny / "manifest.csv"
    cfg = _config(manifest, tmp_path / "r", epochs=20, early_stopping=3, plateau_patience=1)
    trainer = Trainer(cfg)
    n_val = int(trainer.val_rows.size)
    chance = trainer.val_chance
    low = next(k for k in range(n_val + 1) if not at_chance(k, n_val, chance)) / n_val
    assert wilson(round(low * n_val), n_val)[0] > chance  # the first accuracy off chance
    # five epochs at chance with a flat loss (nothing counts), then learning, then a plateau
    losses = [0.70, 0.71, 0.72, 0.70, 0.73, 0.50, 0.40, 0.45, 0.46, 0.47, 0.48]
    accs = [chance] * 5 + [low, 0.9, 0.9, 0.9, 0.9, 0.9]
    _scripted(trainer, losses, accs)
    log = trainer.fit()
    frame = pd.DataFrame(log)
    assert frame["val_at_chance"].tolist() == [True] * 5 + [False] * 5
    # epochs 1-5 at chance count nothing (without the rule, epochs 2-4 would have stopped
    # it); epoch 7 is the best; epochs 8, 9, 10 are the three bad ones: it stops after 10
    assert len(log) == 10 and frame["val_loss"].idxmin() == 6
    # the plateau (patience 1) cuts the rate at the second bad epoch, 9, and only then
    lrs = frame["lr"].tolist()
    assert lrs[:8] == [cfg.lr] * 8
    assert lrs[8:] == [pytest.approx(cfg.lr * cfg.plateau_factor)] * 2
    assert trainer.learned and (tmp_path / "r" / "checkpoints" / "best.pt").is_file()


def test_a_model_that_never_leaves_chance_trains_all_its_epochs(synth_tiny, tmp_path):
    cfg = _config(synth_tiny / "manifest.csv", tmp_path / "r", epochs=7, early_stopping=2)
    trainer = Trainer(cfg)
    _scripted(trainer, [0.69 + 0.01 * k for k in range(7)], [trainer.val_chance] * 7)
    log = trainer.fit()
    assert len(log) == 7 and not trainer.learned  # without the rule it stopped at epoch 3
    assert all(r["lr"] == cfg.lr for r in log)  # and the plateau never cut the rate
