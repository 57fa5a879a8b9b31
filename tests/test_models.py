"""CAM-ready nets, checkpoints, training resume, and the preprocessing contract."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torchvision import models as tvm

from saliency.cli import main
from saliency.data.manifest import read_manifest, write_manifest
from saliency.models.checkpoint import load_model, read_checkpoint, save_checkpoint
from saliency.models.preprocess import load_resized, model_input
from saliency.models.protocol import ExplainableModel
from saliency.models.train import TrainConfig, Trainer
from saliency.models.zoo import ModelSpec, build_model, hub_weights_path, load_backbone


@pytest.mark.parametrize(
    ("arch", "stride", "size", "grid"),
    [
        ("resnet18", 16, 128, 8),
        ("resnet18", 32, 128, 4),
        ("resnet34", 16, 64, 4),
        ("resnet50", 16, 64, 4),
        ("vgg16", 16, 64, 4),
        ("inception_v3", 16, 128, 2),
    ],
)
def test_feature_grid_and_gap_fc_head(arch, stride, size, grid):
    model = build_model(ModelSpec(arch=arch, output_stride=stride)).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        maps = model.forward_features(x)
        assert maps.shape[2:] == (grid, grid) and maps.shape[1] == model.channels
        expected = maps.mean(dim=(2, 3)) @ model.fc.weight.T + model.fc.bias
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
    # the model protocol the methods rely on: the feature layer's output is forward_features
    assert isinstance(model, ExplainableModel)
    seen = []
    handle = model.feature_layer.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        model.forward_features(x)
    handle.remove()
    torch.testing.assert_close(seen[-1], maps, rtol=0, atol=0)


def test_resnet50_output_stride_16_uses_dilation_not_stride():
    model = build_model(ModelSpec(arch="resnet50"))
    block = model.features.layer4[0]
    assert block.conv2.stride == (1, 1) and model.features.layer4[1].conv2.dilation == (2, 2)


def test_squeeze_excitation_and_two_logit_head():
    """``--se``: every block's residual branch is rescaled per channel, before the addition,
    by sigmoid(fc2(relu(fc1(global mean)))) (Hu et al.); composed here by hand from each
    block's convolutions, norms and SE weights. ``--loss ce``: one logit per class, a linear
    map of the pooled last block."""
    torch.manual_seed(0)
    model = build_model(ModelSpec(arch="resnet18", se=True, n_outputs=2, loss="ce")).eval()
    x = torch.randn(2, 3, 32, 32)
    f = model.features
    blocks = [*f.layer1, *f.layer2, *f.layer3, *f.layer4]
    assert len(blocks) == 8
    with torch.no_grad():
        h = f.maxpool(f.relu(f.bn1(f.conv1(x))))  # the stem
        for block in blocks:
            bn, se = block.bn2  # the residual branch's last norm, then the SE
            branch = bn(block.conv2(torch.relu(block.bn1(block.conv1(h)))))
            squeeze = branch.mean(dim=(2, 3))  # [N, C]
            excite = torch.sigmoid(
                torch.relu(squeeze @ se.fc1.weight[:, :, 0, 0].T + se.fc1.bias)
                @ se.fc2.weight[:, :, 0, 0].T
                + se.fc2.bias
            )
            identity = h if block.downsample is None else block.downsample(h)
            by_hand = torch.relu(branch * excite[:, :, None, None] + identity)
            torch.testing.assert_close(block(h), by_hand, rtol=1e-5, atol=1e-5)
            assert excite.max() < 0.9  # the SE rescales: this is not the plain block
            h = by_hand
        torch.testing.assert_close(model.forward_features(x), h, rtol=1e-5, atol=1e-5)
        logits = model(x)
    assert logits.shape == (2, 2)
    expected = h.mean(dim=(2, 3)) @ model.fc.weight.T + model.fc.bias
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


def test_imagenet_weights_are_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = ModelSpec(arch="resnet18", pretrained="imagenet")
    with pytest.raises(FileNotFoundError, match="never downloads them.*resnet18-f37072fd.pth"):
        load_backbone(build_model(spec), spec, "imagenet")
    # once the file is where the message says, it loads (torchvision's own key layout)
    path, _ = hub_weights_path("resnet18")
    path.parent.mkdir(parents=True)
    reference = tvm.resnet18(weights=None)
    torch.save(reference.state_dict(), path)
    for se in (False, True):
        spec = ModelSpec(arch="resnet18", pretrained="imagenet", se=se)
        model = build_model(spec)
        load_backbone(model, spec, "imagenet")
        w = model.features.layer1[0].bn2[0].weight if se else model.features.layer1[0].bn2.weight
        torch.testing.assert_close(w, reference.layer1[0].bn2.weight)
        torch.testing.assert_close(model.features.conv1.weight, reference.conv1.weight)


def test_inception_needs_75_px_and_imagenet_inception_uses_its_own_normalization(tmp_path):
    from saliency.models.zoo import default_preprocessing

    with pytest.raises(ValueError, match="at least 75"):
        default_preprocessing(ModelSpec(arch="inception_v3"), 64)
    pre = default_preprocessing(ModelSpec(arch="inception_v3", pretrained="imagenet"), 128)
    assert pre.mean == (0.5, 0.5, 0.5) and pre.std == (0.5, 0.5, 0.5)


def test_checkpoint_loads_with_weights_only_and_records_the_contract(tiny_run):
    ckpt = torch.load(tiny_run / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["model"]["arch"] == "resnet18" and ckpt["model"]["output_stride"] == 16
    assert ckpt["classes"] == ["female", "male"]
    assert ckpt["preprocessing"]["size"] == 32
    assert len(ckpt["data"]["sha256"]) == 64
    assert set(ckpt["resume"]) >= {"optimizer", "scheduler", "generator", "torch_rng"}
    log = pd.read_csv(tiny_run / "train_log.csv")
    assert log.columns.tolist() == [
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "val_at_chance",
        "lr",
        "seconds",
    ]
    config = json.loads((tiny_run / "config.json").read_text())
    assert {"train", "evaluate:test"} <= set(config["commands"])


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("name", ["best.pt", "last.pt"])
def test_a_trained_checkpoint_reads_back_to_the_dict_it_was(tiny_run, name):
    """The typed checkpoint writes the very dict training always wrote: same keys in the
    same order, same values (stage_regression compares .pt files key by key)."""
    path = tiny_run / "checkpoints" / name
    raw = torch.load(path, weights_only=True)
    ckpt = read_checkpoint(path)
    assert not ckpt.adopted and ckpt.seed == raw["train_config"]["seed"]
    assert ckpt.arch == "resnet18" and ckpt.n_outputs == 1 and ckpt.cam_refusal is None
    assert (ckpt.resume is not None) == (name == "last.pt")
    assert _same({"format": raw["format"], **ckpt.to_dict()}, raw)


def test_evaluate_uses_the_checkpoints_preprocessing(tiny_run, tmp_path):
    pred = pd.read_csv(tiny_run / "eval" / "test" / "predictions.csv")
    model, pre, classes, ckpt = load_model(tiny_run / "checkpoints" / "best.pt")
    manifest = read_manifest(ckpt.data.manifest)
    images = np.stack([load_resized(manifest.abspath(p), pre) for p in pred["path"][:8]])
    with torch.no_grad():
        logits = model(model_input(torch.from_numpy(images), pre))[:, 0].numpy()
    np.testing.assert_allclose(pred["logit"][:8], logits, rtol=1e-4, atol=1e-4)
    # a checkpoint with another normalization gives other logits in evaluate
    run2 = tmp_path / "run2"
    (run2 / "checkpoints").mkdir(parents=True)
    tampered = read_checkpoint(tiny_run / "checkpoints" / "best.pt")
    tampered.pre = dataclasses.replace(tampered.pre, mean=(0.0, 0.0, 0.0))
    save_checkpoint(run2 / "checkpoints" / "best.pt", tampered)
    assert main(["evaluate", "--run", str(run2), "--workers", "0"]) == 0
    pred2 = pd.read_csv(run2 / "eval" / "test" / "predictions.csv")
    assert not np.allclose(pred2["logit"], pred["logit"], atol=1e-3)


def test_evaluate_tables_and_figures_show_the_predictions(tiny_run, tmp_path, monkeypatch):
    """metrics.json and the figures evaluate draws from it hold the numbers of
    predictions.csv, recounted here by hand: the confusion counts and row fractions; each ROC
    curve's points (TPR, FPR at every distinct threshold on p(male)) and AUC (Mann-Whitney:
    P(positive scores above negative) + ties / 2); the reliability points (15 equal-width bins
    of the top probability: mean confidence, accuracy) and ECE; the training curves."""
    import matplotlib.pyplot as plt

    from saliency.stages import evaluate as stage

    out = tiny_run / "eval" / "test"
    for name in ("predictions.csv", "metrics.json", "group_accuracy.csv", "confusion.png",
                 "roc.png", "reliability.png", "curves.png"):  # fmt: skip
        assert (out / name).is_file(), name
    pred = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    metrics = json.loads((out / "metrics.json").read_text())
    classes = ["female", "male"]
    np.testing.assert_allclose(pred["prob_male"], 1 / (1 + np.exp(-pred["logit"])), atol=1e-5)
    assert (pred["pred"] == np.where(pred["logit"] > 0, "male", "female")).all()
    assert metrics["n"] == len(pred) == 24
    assert metrics["accuracy"]["all"]["value"] == (pred["pred"] == pred["label"]).mean()
    counts = np.array([[((pred["label"] == t) & (pred["pred"] == p)).sum() for p in classes]
                       for t in classes])  # fmt: skip
    assert metrics["confusion"]["rows_true_cols_pred"] == counts.tolist()
    table = pd.read_csv(out / "group_accuracy.csv")
    assert table["selection"].tolist()[:3] == ["all", "female", "male"]

    figures = {}  # what evaluate draws from these files (stage.run calls _figures with them)
    monkeypatch.setattr("saliency.viz.style.save_figure",
                        lambda fig, path, **kw: figures.setdefault(path.name, fig))  # fmt: skip
    stage._figures(tmp_path, pred, metrics, classes, tiny_run)  # nothing written to the run
    (ax,) = figures["confusion.png"].axes
    np.testing.assert_allclose(ax.images[0].get_array(), counts / counts.sum(1, keepdims=True))
    assert sorted(int(t.get_text().split("\n")[0]) for t in ax.texts) == sorted(counts.ravel())

    (ax,) = figures["roc.png"].axes
    curves = {line.get_label().split(" (AUC")[0]: line for line in ax.lines
              if "AUC" in line.get_label()}  # fmt: skip
    assert set(curves) == {"all", "A", "B"}
    for name, line in curves.items():
        sel = pred if name == "all" else pred[pred["group"] == name]
        score, pos = sel["prob_male"].to_numpy(), (sel["label"] == "male").to_numpy()
        cuts = np.unique(score)[::-1]
        tpr = [0.0] + [(score[pos] >= c).mean() for c in cuts]
        fpr = [0.0] + [(score[~pos] >= c).mean() for c in cuts]
        np.testing.assert_allclose(line.get_xdata(), fpr)
        np.testing.assert_allclose(line.get_ydata(), tpr)
        pairs = score[pos][:, None] - score[~pos][None, :]
        auc = (pairs > 0).mean() + 0.5 * (pairs == 0).mean()
        got = metrics["roc_auc"]["all"] if name == "all" else metrics["roc_auc"]["by_group"][name]
        assert got == pytest.approx(auc, abs=1e-12)
        assert line.get_label() == f"{name} (AUC {auc:.3f})"

    (ax,) = figures["reliability.png"].axes
    conf = pred[["prob_female", "prob_male"]].max(axis=1).to_numpy()
    right = (pred["pred"] == pred["label"]).to_numpy()
    which = (conf[:, None] >= np.arange(1, 15) / 15).sum(1)  # bin k holds [k / 15, (k + 1) / 15)
    used = np.unique(which)
    points = ax.lines[1]  # after the diagonal
    np.testing.assert_allclose(points.get_xdata(), [conf[which == b].mean() for b in used])
    np.testing.assert_allclose(points.get_ydata(), [right[which == b].mean() for b in used])
    ece = sum((which == b).mean() * abs(right[which == b].mean() - conf[which == b].mean())
              for b in used)  # fmt: skip
    assert metrics["calibration"]["ece"] == pytest.approx(ece, abs=1e-7)  # CSV's digits
    assert ax.get_title() == f"reliability (ECE {ece:.3f})"

    log = pd.read_csv(tiny_run / "train_log.csv")
    loss_ax, acc_ax = figures["curves.png"].axes
    for ax, what in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        lines = {line.get_label(): line for line in ax.lines}
        for split in ("train", "val"):
            np.testing.assert_allclose(lines[split].get_xdata(), log["epoch"])
            np.testing.assert_allclose(lines[split].get_ydata(), log[f"{split}_{what}"])
    for fig in figures.values():
        plt.close(fig)


RESUME_SEED = 11


def _resume_cfg(manifest: Path, out: Path) -> TrainConfig:
    return TrainConfig(
        manifest=str(manifest),
        out=str(out),
        size=32,
        epochs=2,
        batch_size=32,
        early_stopping=10,
        workers=0,
        seed=RESUME_SEED,
        device="cpu",  # bitwise equality: cuDNN's kernels are not deterministic
    )


@pytest.fixture(scope="module")
def two_epochs(synth_tiny, tmp_path_factory) -> dict:
    """The reference for both resume tests: 2 epochs in one go; its ``last.pt``."""
    out = tmp_path_factory.mktemp("resume") / "a"
    Trainer(_resume_cfg(synth_tiny / "manifest.csv", out)).fit()
    return torch.load(out / "checkpoints" / "last.pt", weights_only=True)


def test_resume_after_a_kill_gives_the_same_weights(synth_tiny, two_epochs, tmp_path):
    class Killed(Exception):
        pass

    def kill(event):
        if event.epoch == 1:
            raise Killed

    cfg = _resume_cfg(synth_tiny / "manifest.csv", tmp_path / "b")
    with pytest.raises(Killed):
        Trainer(cfg).fit(on_epoch=kill)
    resumed = Trainer(cfg, resume=True)
    assert resumed.epoch == 1
    resumed.fit()
    a = two_epochs
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert [r["val_loss"] for r in a["resume"]["log"]] == [
        r["val_loss"] for r in b["resume"]["log"]
    ]


def test_resume_with_more_epochs_continues_the_same_run(synth_tiny, two_epochs, tmp_path, capsys):
    """Through the command line, with the reference's settings: 1 epoch, a resume that has
    nothing to do, then a resume to 2 epochs gives the reference's weights."""
    common = ["--manifest", str(synth_tiny / "manifest.csv"), "--size", "32", "--batch-size",
              "32", "--early-stopping", "10", "--workers", "0", "--seed", str(RESUME_SEED),
              "--device", "cpu"]  # fmt: skip
    assert main(["train", "--out", str(tmp_path / "b"), "--epochs", "1", *common]) == 0
    out_b = ["--out", str(tmp_path / "b"), "--device", "cpu", "--workers", "0"]
    assert main(["train", "--resume", *out_b]) == 0
    assert "nothing to do" in capsys.readouterr().out  # the stored total (1) is reached
    assert main(["train", "--resume", "--epochs", "2", *out_b]) == 0
    a = two_epochs
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)
    assert b["train_config"]["epochs"] == 2 and len(b["resume"]["log"]) == 2
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k


@pytest.mark.parametrize("problem", ["missing", "three_classes", "no_val"])
def test_bad_manifest_fails_before_training(synth_tiny, tmp_path, capsys, problem):
    df = read_manifest(synth_tiny / "manifest.csv").df.copy()
    df["path"] = [str(synth_tiny / p) for p in df["path"]]
    if problem == "missing":
        df.loc[0, ["path", "split"]] = [str(tmp_path / "gone.png"), "train"]
    elif problem == "three_classes":
        df.loc[0, "label"] = "child"
    else:
        df.loc[df["split"] == "val", "split"] = "train"
    write_manifest(df, tmp_path / "m.csv")
    code = main(
        [
            "train",
            "--manifest",
            str(tmp_path / "m.csv"),
            "--out",
            str(tmp_path / "r"),
            "--size",
            "32",
            "--workers",
            "0",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    expected = {
        "missing": "1 train/val image(s) missing",
        "three_classes": "exactly two classes",
        "no_val": "no validation images",
    }[problem]
    assert expected in err
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_compare_writes_one_table(tiny_run, brows_reader_run, tmp_path, monkeypatch):
    """One row per run: its architecture, grid, parameter count and evaluate's numbers, and
    the median time per image of three timed forward passes of 32 images (after a warm-up),
    read here off a scripted clock: passes of 64, 32 and 3200 ms give 2 ms per image (the
    median, not the mean, 34.3, or the minimum, 1); 160, 320 and 96 ms give 5."""
    import types

    import saliency.cli.compare as cli_evaluate

    ticks = iter([0, 0.064, 1, 1.032, 2, 5.2, 10, 10.16, 11, 11.32, 12, 12.096])
    monkeypatch.setattr(
        cli_evaluate, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks))
    )
    brows_reader_run = shutil.copytree(brows_reader_run, tmp_path / "reader")  # evaluate writes
    assert main(["evaluate", "--run", str(brows_reader_run), "--workers", "0"]) == 0
    runs = [str(tiny_run), str(brows_reader_run)]
    assert main(["compare", *runs, "--out", str(tmp_path / "c.csv")]) == 0
    table = pd.read_csv(tmp_path / "c.csv").set_index("run")
    assert list(table.index) == runs
    tiny, reader = table.loc[runs[0]], table.loc[runs[1]]
    assert (tiny["arch"], tiny["grid"]) == ("resnet18", "2x2")  # 32 px at output stride 16
    assert (reader["arch"], reader["grid"]) == ("region-reader", "64x64")
    assert reader["parameters"] == 6  # 1x1 conv (3 weights, 1 bias) and fc (1 weight, 1 bias)
    assert tiny["parameters"] == sum(p.numel() for p in build_model(ModelSpec()).parameters())
    for run, row in table.iterrows():
        metrics = json.loads((Path(run) / "eval" / "test" / "metrics.json").read_text())
        assert row["accuracy"] == pytest.approx(metrics["accuracy"]["all"]["value"])
        assert row["loss"] == pytest.approx(metrics["loss"])
        assert row["B_F"] == pytest.approx(metrics["accuracy"]["B_F"]["value"])
    assert table["ms_per_image"].tolist() == [2.0, 5.0]
    assert next(ticks, None) is None  # three timed passes per run, nothing else timed


def test_inference_commands_run_without_tf32_and_restore_the_settings(tiny_image, tmp_path):
    from saliency.models.predict import predict_logits
    from saliency.models.preprocess import Preprocessing
    from saliency.runtime import full_float32

    class Recorder(torch.nn.Module):  # records the TF32 switches at forward time
        n_outputs = 1

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen = []

        def forward(self, x):
            self.seen.append(
                (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
            )
            return x.mean((1, 2, 3))[:, None] + self.w

    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        model = Recorder()
        predict_logits(model, Preprocessing(size=16), [tiny_image(tmp_path / "a.png")], workers=0)
        assert model.seen == [(False, False)]
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        assert full_float32(lambda: torch.backends.cudnn.allow_tf32)() is False
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_normalization_constants_made_under_inference_mode_still_allow_backward():
    """The mean/std tensors are made once per device and reused; the first call may come
    from an inference-mode command (ablate), and a later one needs gradients (IG)."""
    from saliency.models.preprocess import Preprocessing, normalize

    pre = Preprocessing(size=4, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 0.125))
    with torch.inference_mode():
        first = normalize(torch.ones(1, 3, 4, 4), pre)
    x = torch.ones(1, 3, 4, 4, requires_grad=True)
    normalize(x, pre).sum().backward()
    assert torch.allclose(first[0, :, 0, 0], torch.tensor([1.8, 3.2, 5.6]))
    assert torch.equal(x.grad[0, :, 0, 0], torch.tensor([2.0, 4.0, 8.0]))  # 1 / std


def test_load_model_restores_every_tensor_of_the_checkpoint(tiny_run, monkeypatch):
    import saliency.models.checkpoint as checkpoint

    path = tiny_run / "checkpoints" / "best.pt"
    state = read_checkpoint(path).state_dict
    model = load_model(path)[0]
    got = model.state_dict()
    assert got.keys() == state.keys()
    assert all(torch.equal(got[k], state[k]) for k in state)
    assert not any(t.is_meta for t in (*model.parameters(), *model.buffers()))
    assert all(p.requires_grad for p in model.parameters())  # methods may freeze them

    built = checkpoint.build_model  # a net with a buffer no state dict holds is built for real

    def with_extra_buffer(spec):
        net = built(spec)
        net.register_buffer("scale", torch.full((3,), 2.0), persistent=False)
        return net

    monkeypatch.setattr(checkpoint, "build_model", with_extra_buffer)
    model = load_model(path)[0]
    assert torch.equal(model.scale, torch.full((3,), 2.0))
    assert all(torch.equal(model.state_dict()[k], state[k]) for k in state)


@pytest.mark.parametrize("damage", ["truncated", "not_a_checkpoint", "wrong_weights"])
@pytest.mark.parametrize("command", ["evaluate", "explain", "ablate"])
def test_a_broken_checkpoint_is_one_clear_error_line(tiny_run, tmp_path, capsys, damage, command):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run / "checkpoints", run / "checkpoints")
    best = run / "checkpoints" / "best.pt"
    if damage == "truncated":
        best.write_bytes(best.read_bytes()[:5000])
    elif damage == "not_a_checkpoint":
        best.write_text("this is not a checkpoint\n")
    else:  # a ResNet-34's weights under a ResNet-18 spec
        ckpt = read_checkpoint(best)
        ckpt.state_dict = build_model(ModelSpec(arch="resnet34")).state_dict()
        save_checkpoint(best, ckpt)
    code = main([command, "--run", str(run), "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    expected = "do not fit its architecture" if damage == "wrong_weights" else "cannot be read"
    assert expected in err and str(best) in err and "Traceback" not in err
