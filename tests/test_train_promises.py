"""Training paths no other test reaches: ``--loss ce``, ``--pretrained FILE`` and a manifest
without a split column, each trained for one epoch at 32 px on ``synth_tiny`` on the CPU.

- ``--loss ce``: the checkpoint holds a two-logit head; evaluate's probabilities are the
  softmax of the two logits computed here from the stored weights, and the logged validation
  loss is the cross-entropy of those logits.
- ``--pretrained FILE``: with ``--lr 0`` the stored weights are the starting weights, so every
  backbone weight must be the file's (torchvision's key layout, or a checkpoint's
  ``{"state_dict": {"features.*"}}``); the file's 1000-way ``fc`` is not taken.
- no split column: a seeded split stratified by cell, 70/15/15 within rounding in every
  cell; evaluate's train, val and test rows are that split, and the same seed draws it again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from saliency.cli import main
from saliency.data.imageio import read_rgb
from saliency.models.checkpoint import read_checkpoint
from saliency.rundir import best_checkpoint

SIZE = 32  # synth_tiny's stored size: the model's input is the stored image
CELL_SIZES = (37, 31, 23, 19)
IMAGENET = (np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]))


def train(manifest, out, *extra: str) -> None:
    argv = ["train", "--manifest", str(manifest), "--out", str(out), "--size", str(SIZE)]
    argv += ["--epochs", "1", "--batch-size", "32", "--workers", "0", "--device", "cpu"]
    assert main([*argv, *extra]) == 0


@pytest.fixture(scope="module")
def unsplit_ce_run(tmp_path_factory, synth_tiny):
    """synth_tiny's faces without a split column, cells cut to 37, 31, 23 and 19 faces (so
    70/15/15 needs rounding), trained with --loss ce for one epoch and evaluated on each
    split of the seeded draw."""
    root = tmp_path_factory.mktemp("unsplit_ce")
    df = pd.read_csv(synth_tiny / "manifest.csv")
    df["path"] = [str(synth_tiny / p) for p in df["path"]]
    cells = df.groupby(["group", "label"], sort=True)
    df = pd.concat([cell.head(n) for (_, cell), n in zip(cells, CELL_SIZES, strict=True)])
    manifest = root / "manifest.csv"
    df[["path", "label", "group"]].to_csv(manifest, index=False)
    run = root / "run"
    train(manifest, run, "--loss", "ce")
    preds = {}
    for split in ("train", "val", "test"):
        argv = ["evaluate", "--run", str(run), "--split", split, "--workers", "0"]
        assert main([*argv, "--device", "cpu"]) == 0
        preds[split] = pd.read_csv(run / "eval" / split / "predictions.csv")
    return run, manifest, preds


def hand_logits(ckpt, paths) -> np.ndarray:
    """The stored weights in the model class, on inputs normalized here (ImageNet)."""
    from saliency.models.zoo import build_model

    model = build_model(ckpt.spec)
    model.load_state_dict(ckpt.state_dict)
    unit = np.stack([read_rgb(p).astype(np.float64) / 255 for p in paths])
    x = torch.from_numpy((unit - IMAGENET[0]) / IMAGENET[1]).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        return model.eval()(x).double().numpy()


def absolute(manifest, paths) -> list[str]:
    return [str((manifest.parent / p).resolve()) for p in paths]


def test_ce_loss_trains_two_logits_whose_softmax_evaluate_reports(unsplit_ce_run):
    """--loss ce: two logits (one per class, alphabetical); evaluate's probabilities are their
    softmax, its pred their argmax; the logged val loss is mean -log softmax(z)[label]."""
    run, manifest, preds = unsplit_ce_run
    ckpt = read_checkpoint(best_checkpoint(run))
    assert ckpt.spec.loss == "ce" and ckpt.n_outputs == 2
    assert ckpt.classes == ["female", "male"]
    assert tuple(ckpt.state_dict["fc.weight"].shape) == (2, 512)
    for split in ("val", "test"):
        pred = preds[split]
        z = hand_logits(ckpt, absolute(manifest, pred["path"]))
        np.testing.assert_allclose(pred[["logit_female", "logit_male"]], z, atol=1e-4)
        soft = np.exp(z - z.max(1, keepdims=True))
        soft /= soft.sum(1, keepdims=True)
        np.testing.assert_allclose(pred[["prob_female", "prob_male"]], soft, atol=1e-5)
        clear = np.abs(z[:, 1] - z[:, 0]) > 1e-4
        expected = np.where(z[:, 1] > z[:, 0], "male", "female")
        np.testing.assert_array_equal(pred["pred"][clear], expected[clear])
        if split == "val":
            y = (pred["label"] == "male").to_numpy().astype(int)
            ce = -np.log(soft[np.arange(len(y)), y]).mean()
            log = pd.read_csv(run / "train_log.csv")
            assert log["val_loss"].iloc[-1] == pytest.approx(ce, rel=1e-4)


def test_unsplit_manifest_gets_a_seeded_70_15_15_split_per_cell(unsplit_ce_run):
    """No split column: every (group, label) cell is split 70/15/15 within rounding; the
    three splits partition the manifest; n_train and n_val are the split's; the split is
    a function of the seed (drawn again equal, another seed differs)."""
    from saliency.models.trainset import prepare

    run, manifest, preds = unsplit_ce_run
    ckpt = read_checkpoint(best_checkpoint(run))
    assert ckpt.data.seeded_split is True
    df = pd.read_csv(manifest)
    df["split"] = ""
    seen = []
    for split, pred in preds.items():
        rows = absolute(manifest, pred["path"])
        df.loc[df["path"].isin(rows), "split"] = split
        seen += rows
    assert sorted(seen) == sorted(df["path"]) and len(set(seen)) == len(df)  # a partition
    n = {s: int((df["split"] == s).sum()) for s in ("train", "val")}
    assert (ckpt.data.n_train, ckpt.data.n_val) == (n["train"], n["val"])
    cells = df.groupby(["group", "label"])["split"]
    assert sorted(cells.size()) == sorted(CELL_SIZES)
    for cell, split in cells:
        for name, share in (("train", 0.7), ("val", 0.15)):
            assert abs((split == name).sum() - share * len(split)) <= 0.5 + 1e-9, cell
        rest = len(split) - round(0.7 * len(split)) - round(0.15 * len(split))
        assert abs((split == "test").sum() - rest) <= 1, cell
    again = prepare(manifest, seed=0).split
    np.testing.assert_array_equal(again, df["split"].to_numpy())
    assert (prepare(manifest, seed=1).split != again).any()


def torchvision_layout(seed: int) -> dict:
    """A torchvision ResNet-18 state dict with every tensor random (BN included)."""
    import torchvision

    gen = torch.Generator().manual_seed(seed)
    state = torchvision.models.resnet18(weights=None).state_dict()
    return {
        k: (torch.rand(v.shape, generator=gen) + 0.5 if v.is_floating_point() else v)
        for k, v in state.items()
    }


@pytest.mark.parametrize("layout", ["torchvision", "checkpoint"])
def test_pretrained_file_is_where_training_starts(tmp_path, synth_tiny, layout):
    """--pretrained FILE with --lr 0: Adam moves nothing, so the stored weights are the
    starting ones. Every backbone weight and BN affine parameter is the file's; the file's
    1000-way fc is dropped (ours has one output)."""
    state = torchvision_layout(seed=5)
    path = tmp_path / "start.pt"
    if layout == "torchvision":
        torch.save(state, path)
    else:  # a run's checkpoint layout: {"state_dict": {"features.<torchvision key>": ...}}
        torch.save({"state_dict": {f"features.{k}": v for k, v in state.items()}}, path)
    df = pd.read_csv(synth_tiny / "manifest.csv")  # 24 train and 8 val faces suffice
    df["path"] = [str(synth_tiny / p) for p in df["path"]]
    small = pd.concat([df[df["split"] == "train"].head(24), df[df["split"] == "val"].head(8)])
    small[["path", "label", "group", "split"]].to_csv(tmp_path / "small.csv", index=False)
    run = tmp_path / "run"
    train(tmp_path / "small.csv", run, "--pretrained", str(path), "--lr", "0")
    stored = read_checkpoint(best_checkpoint(run)).state_dict
    params = [k for k in state if not k.startswith("fc.") and "running_" not in k]
    params = [k for k in params if "num_batches" not in k]
    assert len(params) == 60  # 20 convolutions, 20 batch norms (weight and bias)
    for k in params:
        torch.testing.assert_close(stored[f"features.{k}"], state[k], rtol=0, atol=0)
    assert tuple(stored["fc.weight"].shape) == (1, 512)
