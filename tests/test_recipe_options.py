"""The reference recipes' training options (issue 33, item 1): frozen blocks, SGD/AdamW/Adam,
step and cosine schedules, resumed exactly; the null stops on validation loss alone.

Trained on 48 of ``synth_tiny``'s faces (32 px) for a few steps: what is checked is the
mechanism (bit-identical frozen tensors, learning rates computed by hand), not accuracy."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from saliency.models.recipe import TrainConfig
from saliency.models.train import Trainer


@pytest.fixture(scope="module")
def small(tmp_path_factory, synth_tiny) -> Path:
    """56 of ``synth_tiny``'s faces: of the first 48 every fourth in val (12), the rest in
    train; the last 8 in test (for the null stage's evaluation)."""
    from saliency.data.manifest import read_manifest, write_manifest

    m = read_manifest(synth_tiny / "manifest.csv")
    df = m.df.head(56).copy()
    df["path"] = [str(m.abspath(p)) for p in df["path"]]
    df["mask"] = [str(m.abspath(p)) for p in df["mask"]]
    df["split"] = ["test" if i >= 48 else "val" if i % 4 == 0 else "train" for i in range(56)]
    assert df[df["split"] == "val"]["label"].nunique() == 2
    return write_manifest(df, tmp_path_factory.mktemp("small") / "manifest.csv")


def _cfg(manifest: Path, out: Path, **kw) -> TrainConfig:
    base = dict(manifest=str(manifest), out=str(out), size=32, batch_size=16, epochs=1,
                workers=0, device="cpu", cache_bytes=0)  # fmt: skip
    return TrainConfig(**(base | kw))


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(("spec", "trained"), [("head", ()), ("head+1", ("layer4",))])
def test_frozen_blocks_and_their_batch_norm_statistics_stay_bit_identical(
    small, tmp_path, spec, trained
):
    trainer = Trainer(_cfg(small, tmp_path / "run", freeze=spec, lr=1e-2))
    before = _state(trainer.model)
    trainer.fit()
    after = _state(trainer.model)
    names = {k.split(".")[1] for k in before if k.startswith("features.")}
    assert {"conv1", "bn1", "layer1", "layer4"} <= names  # the ResNet's blocks, by name
    for key, value in before.items():
        block = key.split(".")[1] if key.startswith("features.") else "head"
        moves = block == "head" or block in trained
        if key.startswith("fc.") or (moves and "running_" not in key and "num_batches" not in key
                                     and value.is_floating_point()):  # fmt: skip
            assert not torch.equal(after[key], value), f"{key} did not train"
        elif not moves:  # weights and running statistics alike, bit for bit
            assert torch.equal(after[key], value), f"{key} changed although frozen"
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert all(n.startswith("fc.") or n.split(".")[1] in trained for n in trainable)
    assert {id(p) for g in trainer.opt.param_groups for p in g["params"]} == {
        id(p) for p in trainer.model.parameters() if p.requires_grad
    }


def _lrs(trainer: Trainer) -> list[float]:
    return [row["lr"] for row in trainer.log]


LR = 0.1
HAND = {  # the learning rate after each of 4 epochs (the log's lr column), by hand
    "step": [LR, LR * 0.5, LR * 0.5, LR * 0.25],  # x0.5 every 2 epochs
    "cosine": [LR * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(1, 5)],
}


@pytest.mark.parametrize(("optimizer", "scheduler"), [("sgd", "step"), ("adamw", "cosine")])
def test_each_schedule_gives_the_hand_learning_rates_and_survives_resume(
    small, tmp_path, optimizer, scheduler
):
    kw = dict(optimizer=optimizer, scheduler=scheduler, lr=LR, step_size=2, gamma=0.5,
              epochs=4, early_stopping=100, freeze="head", nesterov=optimizer == "sgd")  # fmt: skip
    straight = Trainer(_cfg(small, tmp_path / "straight", **kw))
    straight.fit()
    assert _lrs(straight) == pytest.approx(HAND[scheduler], rel=1e-12)
    kind = {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}
    assert type(straight.opt) is kind[optimizer]
    if optimizer == "sgd":
        group = straight.opt.param_groups[0]
        assert group["momentum"] == 0.9 and group["nesterov"] is True

    # killed after two epochs, then resumed: the same rates and the same weights
    class Killed(Exception):
        pass

    def kill(event):
        if event.epoch == 2:
            raise Killed

    cfg = _cfg(small, tmp_path / "resumed", **kw)
    with pytest.raises(Killed):
        Trainer(cfg).fit(on_epoch=kill)
    resumed = Trainer(cfg, resume=True)
    assert resumed.epoch == 2 and type(resumed.sched) is type(straight.sched)
    resumed.fit()
    assert _lrs(resumed) == pytest.approx(HAND[scheduler], rel=1e-12)
    for key, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


def test_a_model_at_chance_stops_on_validation_loss_only_when_told_not_to_wait(small, tmp_path):
    """With every weight frozen at lr 0 the validation loss never improves after epoch 1:
    a run that waits for learning (a model at chance) trains all its epochs, the null's rule
    (wait_for_learning=False) stops after patience epochs, and each says why."""
    kw = dict(freeze="head", lr=0.0, epochs=4, early_stopping=1)
    waits = Trainer(_cfg(small, tmp_path / "waits", **kw))
    assert waits.val_chance > 0
    waits.fit()
    at_chance = all(row["val_at_chance"] for row in waits.log)
    assert at_chance, "the untrained model left chance: pick another seed"
    assert len(waits.log) == 4 and waits.stop_reason == "all 4 epochs"
    # the null stage trains the run's recipe on shuffled labels and stops by the null's rule
    import json

    from saliency.cli import main

    run = tmp_path / "waits"
    assert main(["null", "--run", str(run), "--workers", "0", "--device", "cpu"]) == 0
    null_log = (run / "null" / "train_log.csv").read_text().strip().splitlines()
    assert len(null_log) == 1 + 2  # header; epoch 1 is the best, epoch 2 the patience
    stopped = json.loads((run / "config.json").read_text())["commands"]["null"]["config"]["stopped"]
    assert stopped.startswith("early stopping after epoch 2"), stopped


def test_a_bad_freeze_is_one_line():
    from saliency.models.recipe import freeze_blocks

    for text in ("head+0", "all", "head+x"):
        with pytest.raises(ValueError, match="--freeze"):
            freeze_blocks(text)
    assert [freeze_blocks(t) for t in ("none", "head", "head+2")] == [None, 0, 2]
