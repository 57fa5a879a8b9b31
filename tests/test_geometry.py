"""Where grid cells sit in the image: the receptive-field probe and the upsampling rule."""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from saliency.methods.cam import cam
from saliency.methods.geometry import GridGeometry, grid_geometry, upsample
from saliency.models.camnet import CamNet
from saliency.models.zoo import ModelSpec, build_model


def conv_net(*layers: nn.Module) -> CamNet:
    return CamNet(nn.Sequential(*layers), channels=4, n_outputs=1, dropout=0.0).eval()


# Hand-derived: a layer (kernel K, stride s, padding p) centres its output k on input
# s * k - p + (K - 1) / 2; composing the layers gives stride and offset in pixels.
HAND = {
    "resnet stem": (  # 2k -> 4k (pool) -> 8k -> 16k
        lambda: conv_net(
            nn.Conv2d(3, 4, 7, 2, 3),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
            nn.Conv2d(4, 4, 3, 2, 1),
            nn.Conv2d(4, 4, 3, 2, 1),
        ),
        16.0,
        0.0,
    ),
    "valid convs": (  # 2k + 2, then 2 (2k + 1) + 2 = 4k + 4
        lambda: conv_net(nn.Conv2d(3, 4, 5, 2, 0), nn.ReLU(), nn.Conv2d(4, 4, 3, 2, 0)),
        4.0,
        4.0,
    ),
    "tiling 2x2": (  # 2k + 0.5, then 2 (2k + 0.5) + 0.5 = 4k + 1.5: the resize rule
        lambda: conv_net(nn.Conv2d(3, 4, 2, 2), nn.Conv2d(4, 4, 2, 2)),
        4.0,
        1.5,
    ),
}


@pytest.mark.parametrize("name", list(HAND))
def test_probe_finds_the_hand_derived_geometry(name):
    build, stride, offset = HAND[name]
    g = grid_geometry(build(), 64)
    assert g.rule == "receptive-field" and g.note == ""
    assert g.stride == (stride, stride) and g.offset == (offset, offset)


@pytest.mark.parametrize(
    "spec, size, stride, offset",
    [
        (ModelSpec(arch="resnet18"), 128, 16.0, 0.0),  # stem 4k, layer2 8k, layer3 16k
        (ModelSpec(arch="resnet18", output_stride=32), 128, 32.0, 0.0),
        (ModelSpec(arch="resnet50", se=True), 96, 16.0, 0.0),  # dilated layer4 keeps 16k
        (ModelSpec(arch="vgg16"), 64, 16.0, 7.5),  # four 2x2 pools: 0.5 + 1 + 2 + 4
        (ModelSpec(arch="inception_v3"), 160, 32.0, 37.0),  # valid 3x3 convs and pools
    ],
)
def test_probe_geometry_of_the_zoo(spec, size, stride, offset):
    g = grid_geometry(build_model(spec).eval(), size)
    assert g.stride == (stride, stride) and g.offset == (offset, offset)


def test_one_hot_cell_lands_on_its_receptive_field_centre():
    """A single active cell of the 8x8 grid of a 128 px stride-16 net (offset 0) peaks at
    pixel (16 i, 16 j), with exactly the cell's value there; the resize rule would put it at
    (16 i + 7.5, 16 j + 7.5)."""
    stem, _, _ = HAND["resnet stem"]
    features = stem().features
    geometry = grid_geometry(conv_net(*features), 128)

    class HotCell(nn.Module):
        def forward(self, x):
            out = torch.zeros(x.shape[0], 4, *features(x).shape[-2:])
            out[:, :, 2, 5] = 1.0  # row 2, column 5
            return out

    model = CamNet(HotCell(), channels=4, n_outputs=1, dropout=0.0).eval()
    with torch.no_grad():
        model.fc.weight.fill_(0.25)
    m = cam(model, torch.zeros(1, 3, 128, 128), torch.tensor([1]), geometry)[0]
    y, x = np.unravel_index(int(m.argmax()), m.shape)
    assert (y, x) == (32, 80)
    assert float(m[32, 80]) == pytest.approx(1.0, abs=1e-6)
    assert float(m[32, 72]) == pytest.approx(0.5, abs=1e-6)  # halfway to the next centre
    assert float(m[32, 64]) == 0.0 and float(m[48, 80]) == 0.0
    grid = torch.zeros(1, 8, 8)
    grid[0, 2, 5] = 1.0
    half = upsample(grid, (128, 128), GridGeometry.half_pixel((128, 128), (8, 8)))[0]
    y, x = np.unravel_index(int(half.argmax()), half.shape)
    assert y in (39, 40) and x in (87, 88)  # the resize rule: 7.5 px low and right


def test_half_pixel_rule_equals_the_image_resize_of_opencv_and_torch():
    torch.manual_seed(0)
    grid = torch.randn(3, 8, 8, dtype=torch.float64)
    ours = upsample(grid, (128, 128), GridGeometry.half_pixel((128, 128), (8, 8)))
    ref = F.interpolate(grid.unsqueeze(1), size=(128, 128), mode="bilinear").squeeze(1)
    torch.testing.assert_close(ours, ref)
    ocv = cv2.resize(grid[0].numpy(), (128, 128), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(ours[0].numpy(), ocv, atol=1e-5)


def test_upsampling_is_linear_and_keeps_constants():
    torch.manual_seed(1)
    g = GridGeometry("receptive-field", (8, 8), (16.0, 16.0), (0.0, 0.0))
    a, b = torch.randn(2, 8, 8), torch.randn(2, 8, 8)
    torch.testing.assert_close(
        upsample(2 * a - b, (128, 128), g),
        2 * upsample(a, (128, 128), g) - upsample(b, (128, 128), g),
    )
    torch.testing.assert_close(
        upsample(torch.full((1, 8, 8), 3.0), (128, 128), g), torch.full((1, 128, 128), 3.0)
    )


def test_a_model_the_probe_cannot_read_falls_back_to_the_resize_rule():
    class Constant(nn.Module):  # ignores its input
        def forward(self, x):
            return torch.ones(x.shape[0], 4, 8, 8)

    model = CamNet(Constant(), channels=4, n_outputs=1, dropout=0.0)
    g = grid_geometry(model, 128)
    assert g.rule == "half-pixel" and "do not depend on the input" in g.note
    assert g.stride == (16.0, 16.0) and g.offset == (7.5, 7.5)
    assert grid_geometry(build_model(ModelSpec()), 64, "half-pixel").offset == (7.5, 7.5)
    with pytest.raises(ValueError, match="valid: receptive-field, half-pixel"):
        grid_geometry(model, 128, "nearest")
