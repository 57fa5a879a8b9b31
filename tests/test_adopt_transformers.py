"""timm models (a ViT with class-token pooling, a CNN) saved as .safetensors, and a local
Hugging Face folder, adopted without any download; the ViT's Grad-CAM against a hand
computation on its token grid, with hooks on timm's own model."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.torch as safetensors_torch
import timm
import torch
import transformers
from conftest import faces_manifest, model_inputs

from saliency.cli import main
from saliency.methods.gradcam import grad_cam_grid
from saliency.models.checkpoint import load_model
from saliency.models.preprocess import Preprocessing
from saliency.rundir import best_checkpoint

SIZE = 64
PRE = Preprocessing(size=SIZE)


@pytest.fixture(scope="module")
def faces(tmp_path_factory, synth_small) -> Path:
    """8 of the synthetic faces, all in the test split, masks included (absolute paths)."""
    return faces_manifest(synth_small, tmp_path_factory.mktemp("faces"), 8)


def _timm(name: str, tmp: Path, **kw) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    net = timm.create_model(name, pretrained=False, num_classes=2, **kw).eval()
    path = tmp / f"{name}.safetensors"
    safetensors_torch.save_file(net.state_dict(), str(path))
    return net, path


def _adopt_timm(run: Path, name: str, weights: Path, faces: Path) -> None:
    assert main(["adopt", "--out", str(run), "--size", str(SIZE), "--weights", str(weights),
                 "--arch", f"timm:{name}", "--classes", "female,male",
                 "--manifest", str(faces)]) == 0  # fmt: skip


def _hand_gradcam(net, module, x: torch.Tensor, target: torch.Tensor, prefix: int = 1):
    """Grad-CAM on the tokens leaving ``module`` of timm's own ViT, by hooks: class and
    register tokens (``prefix``) dropped, patch tokens in row-major order -> ``[N, 4, 4]``."""
    kept = {}

    def hook(module, inputs, output):
        output.retain_grad()
        kept["a"] = output

    handle = module.register_forward_hook(hook)
    try:
        xg = x.clone().requires_grad_(True)  # so that the tokens carry a graph
        logits = net(xg)
        logits.gather(1, target[:, None]).sum().backward()
    finally:
        handle.remove()
    a, g = kept["a"][:, prefix:].detach(), kept["a"].grad[:, prefix:]  # [N, 16, D]
    cam = torch.einsum("nd,npd->np", g.mean(1), a)
    return cam.reshape(len(x), 4, 4)


def test_a_timm_vit_adopts_evaluates_and_its_gradcam_is_the_token_grid_by_hand(
    tmp_path, faces, capsys
):
    name = "test_vit"  # timm's own small ViT: 6 blocks, class-token pooling
    net, weights = _timm(name, tmp_path, img_size=SIZE)
    run = tmp_path / "vit"
    _adopt_timm(run, name, weights, faces)
    out = capsys.readouterr().out
    assert "blocks.5.norm1, its patch tokens as a 4x4 grid" in out and "cam refused" in out
    model, _, _, ckpt = load_model(best_checkpoint(run))
    tokens = ckpt.adoption["tokens"]
    assert tokens["prefix"] == 1 and tokens["grid"] == [4, 4] and tokens["pool"] == "token"
    x = model_inputs(faces, PRE)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=1e-5, atol=1e-5)
    maps = {}
    for k in (0, 1):
        target = torch.full((len(x),), k)
        maps[k] = grad_cam_grid(model, x, target)
        by_hand = _hand_gradcam(net, net.blocks[-1].norm1, x, target)
        torch.testing.assert_close(maps[k], by_hand, rtol=1e-4, atol=1e-6)
        assert bool((maps[k].abs().amax(dim=(1, 2)) > 0).all())  # every image has evidence
    assert not torch.allclose(maps[0], maps[1], atol=1e-6)  # the two classes' evidence differs
    assert main(["evaluate", "--run", str(run), "--workers", "0"]) == 0
    pred = pd.read_csv(run / "eval/test/predictions.csv")
    np.testing.assert_allclose(pred[["prob_female", "prob_male"]],
                               torch.softmax(net(x), 1).detach().numpy(), atol=1e-5)  # fmt: skip
    assert main(["explain", "--run", str(run), "--methods", "gradcam,ig", "--limit", "4",
                 "--workers", "0"]) == 0  # fmt: skip
    stored = np.load(run / "saliency/test/gradcam/maps.npy")
    assert stored.shape == (4, SIZE, SIZE) and (np.abs(stored).max(axis=(1, 2)) > 0).all()
    meta = json.loads((run / "saliency/test/gradcam/meta.json").read_text())
    assert meta["grid"] == [4, 4] and meta["tokens"]["prefix"] == 1
    assert main(["explain", "--run", str(run), "--methods", "cam", "--workers", "0"]) == 2
    assert "vision transformer" in capsys.readouterr().err


def test_an_average_pooled_vit_with_registers_is_read_at_its_last_block(faces):
    """Pooling over the patch tokens: Grad-CAM on the last block's output; the three
    register tokens dropped (timm's test_vit2 has no class token)."""
    from saliency.models.adopted.record import build
    from saliency.models.adopted.tokens import timm_layout

    torch.manual_seed(1)
    net = timm.create_model("test_vit2", num_classes=2, img_size=SIZE, reg_tokens=3).eval()
    x = model_inputs(faces, PRE)
    layout = timm_layout(net)
    assert layout.target == f"blocks.{len(net.blocks) - 1}" and layout.pool == "avg"
    model, rec = build(net, x, 2, layout=layout)
    assert net.cls_token is None and net.num_prefix_tokens == 3
    assert rec["tokens"]["prefix"] == 3 and not rec["cam_ready"]
    target = torch.tensor([0, 1] * (len(x) // 2))
    by_hand = _hand_gradcam(net, net.blocks[-1], x, target, prefix=3)
    torch.testing.assert_close(grad_cam_grid(model, x, target), by_hand, rtol=1e-4, atol=1e-6)


def test_a_timm_cnn_from_safetensors_is_cam_ready(tmp_path, faces):
    net, weights = _timm("test_resnet", tmp_path)
    run = tmp_path / "cnn"
    _adopt_timm(run, "test_resnet", weights, faces)
    model, _, _, ckpt = load_model(best_checkpoint(run))
    assert ckpt.adoption["cam_ready"] and ckpt.adoption["tokens"] is None
    x = model_inputs(faces, PRE)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.fc.weight, net.fc.weight, rtol=1e-4, atol=1e-5)
    assert main(["evaluate", "--run", str(run), "--workers", "0"]) == 0
    pred = pd.read_csv(run / "eval/test/predictions.csv")
    with torch.no_grad():
        probs = torch.softmax(net(x), 1).numpy()
    np.testing.assert_allclose(pred[["prob_female", "prob_male"]], probs, atol=1e-5)
    assert main(["explain", "--run", str(run), "--methods", "cam,gradcam", "--limit", "4",
                 "--workers", "0"]) == 0  # fmt: skip
    cam = np.load(run / "saliency/test/cam/maps.npy")
    grad = np.load(run / "saliency/test/gradcam/maps.npy")
    cells = int(np.prod(ckpt.adoption["grid"]))  # GAP -> FC: Grad-CAM is CAM / cells
    np.testing.assert_allclose(grad * cells, cam, rtol=1e-3, atol=1e-4 * np.abs(cam).max())


def test_a_missing_timm_weights_file_says_where_to_put_it(tmp_path, capsys):
    args = ["adopt", "--out", str(tmp_path / "r"), "--size", "64", "--classes", "f,m",
            "--arch", "timm:resnet18"]  # fmt: skip
    assert main(args) == 2
    assert "pretrained=True" in capsys.readouterr().err
    assert main([*args, "--weights", str(tmp_path / "absent.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_hugging_face_folder_adopts_with_its_own_size_mean_std_and_labels(tmp_path, faces):
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=SIZE, patch_size=16, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, num_labels=2,
        id2label={0: "male", 1: "female"}, label2id={"male": 0, "female": 1},
    )  # fmt: skip
    hf = transformers.ViTForImageClassification(config).eval()
    folder = tmp_path / "hf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf.save_pretrained(folder)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    transformers.ViTImageProcessor(size={"height": SIZE, "width": SIZE}, image_mean=mean,
                                   image_std=std).save_pretrained(folder)  # fmt: skip
    run = tmp_path / "run"
    assert main(["adopt", "--out", str(run), "--weights", str(folder),
                 "--manifest", str(faces)]) == 0  # fmt: skip
    model, pre, classes, ckpt = load_model(best_checkpoint(run))
    assert classes == ["male", "female"]  # id2label's order
    assert pre == Preprocessing(size=SIZE, mean=tuple(mean), std=tuple(std))
    x = model_inputs(faces, pre)
    with torch.no_grad():
        torch.testing.assert_close(model(x), hf(pixel_values=x).logits, rtol=1e-5, atol=1e-5)
    assert ckpt.adoption["tokens"]["grid"] == [4, 4]
    assert ckpt.adoption["layer"].endswith("layers.1.layernorm_before")
    assert main(["explain", "--run", str(run), "--methods", "gradcam", "--limit", "2",
                 "--workers", "0"]) == 0  # fmt: skip


def test_a_timm_model_saved_for_the_hub_adopts_with_its_pretrained_cfg(tmp_path, faces):
    from timm.models import save_for_hf

    torch.manual_seed(0)
    net = timm.create_model("test_resnet", num_classes=2).eval()
    save_for_hf(net, tmp_path / "hub")  # config.json (architecture, pretrained_cfg), weights
    cfg = json.loads((tmp_path / "hub/config.json").read_text())["pretrained_cfg"]
    run = tmp_path / "run"
    assert main(["adopt", "--out", str(run), "--weights", str(tmp_path / "hub"),
                 "--classes", "female,male", "--manifest", str(faces)]) == 0  # fmt: skip
    model, pre, _, ckpt = load_model(best_checkpoint(run))
    assert pre == Preprocessing(cfg["input_size"][-1], tuple(cfg["mean"]), tuple(cfg["std"]))
    assert ckpt.adoption["hub_kind"] == "timm" and ckpt.adoption["cam_ready"]
    x = model_inputs(faces, pre)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=1e-5, atol=1e-5)
