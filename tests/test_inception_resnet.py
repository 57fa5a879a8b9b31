"""InceptionResNetV2 (the CelebA comparison's chosen model) as a CAM-ready CamNet built
from timm: its grid at CelebA's 218x178 crops is 5x4, CAM equals Grad-CAM times the number
of cells on its last block (GAP -> FC), a timm state dict loads as --pretrained, and one
optimization step trains it."""

from __future__ import annotations

import timm
import torch

from saliency.methods.cam import cam_grid
from saliency.methods.gradcam import grad_cam_grid
from saliency.models.zoo import ModelSpec, build_model, default_preprocessing, load_backbone


def test_inception_resnet_v2_is_cam_ready_loads_timm_weights_and_trains_a_step(tmp_path):
    torch.manual_seed(0)
    spec = ModelSpec("inception_resnet_v2", n_outputs=2, loss="ce")
    model = build_model(spec).eval()
    assert model.forward_features(torch.zeros(1, 3, 218, 178)).shape[1:] == (1536, 5, 4)
    # a timm state dict (its classifier dropped) loads by name as --pretrained
    net = timm.create_model("inception_resnet_v2", pretrained=False, num_classes=7).eval()
    torch.save(net.state_dict(), tmp_path / "irv2.pth")
    load_backbone(model, spec, tmp_path / "irv2.pth")
    assert torch.equal(model.features.conv2d_7b.conv.weight, net.conv2d_7b.conv.weight)
    assert default_preprocessing(ModelSpec("inception_resnet_v2", pretrained="x"), 299).mean == (
        0.5, 0.5, 0.5)  # fmt: skip
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        feats = model.forward_features(x)
        torch.testing.assert_close(feats, net.forward_features(x), rtol=1e-5, atol=1e-5)
    cells = feats.shape[2] * feats.shape[3]
    for k in (0, 1):
        target = torch.full((2,), k)
        torch.testing.assert_close(
            grad_cam_grid(model, x, target) * cells, cam_grid(model, x, target),
            rtol=1e-4, atol=1e-5,
        )  # fmt: skip
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.fc.weight.detach().clone()
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1]))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and not torch.equal(model.fc.weight, before)
    assert model.features.conv2d_1a.conv.weight.grad.abs().sum() > 0  # the whole net trains
