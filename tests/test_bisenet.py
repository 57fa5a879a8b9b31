"""BiSeNet face parser: checkpoint layout, shapes, class-to-region mapping, loading errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from saliency.data.regions import REGION_CODES
from saliency.faces.bisenet import (
    CELEBAMASK_CLASSES,
    CELEBAMASK_TO_REGION,
    BiSeNet,
    _preprocess,
    _resize_nearest,
    load_parser,
    parse_regions,
)

# Generated once from upstream face-parsing.PyTorch (not from our class), see its header.
LAYOUT_FILE = Path(__file__).parent / "data" / "bisenet_79999_layout.txt"


def _layout() -> dict[str, tuple[int, ...]]:
    layout = {}
    for line in LAYOUT_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, shape = line.split()
            layout[name] = () if shape == "-" else tuple(int(s) for s in shape.split(","))
    return layout


def _random_state(layout: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors in the checkpoint's layout (positive BN variances, int64 counters)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in layout.items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(80000, dtype=torch.int64)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[name] = torch.randn(shape, generator=gen) * 0.05
    return state


@pytest.fixture(scope="module")
def parser() -> BiSeNet:
    model = BiSeNet()
    model.load_state_dict(_random_state(_layout()), strict=True)
    return model.eval()


def test_layout_matches_published_checkpoint():
    layout = _layout()
    assert len(layout) == 191 and layout["cp.resnet.conv1.weight"] == (64, 3, 7, 7)
    ours = {k: tuple(v.shape) for k, v in BiSeNet().state_dict().items()}
    assert ours == layout
    assert list(ours) == list(layout)  # same order too
    BiSeNet().load_state_dict(_random_state(layout), strict=True)


def test_constructor_downloads_nothing(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("BiSeNet tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr("torch.utils.model_zoo.load_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    BiSeNet()


def test_forward_shapes(parser):
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        main = parser(x)
        outs = parser.forward_all(x)
    assert main.shape == (2, 19, 64, 48)
    assert [tuple(o.shape) for o in outs] == [(2, 19, 64, 48)] * 3
    torch.testing.assert_close(outs[0], main)


def test_parse_regions_size_dtype_codes(parser):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)
    labels = parse_regions(parser, images, batch_size=2)
    assert labels.dtype == torch.uint8 and labels.shape == (3, 40, 56)
    assert int(labels.max()) <= 6
    # torch input gives the same answer, and batching does not change it
    torch.testing.assert_close(parse_regions(parser, torch.from_numpy(images)), labels)


@pytest.mark.parametrize(
    ("cls", "region"), [("l_ear", "skin"), ("eye_g", "eyes"), ("u_lip", "mouth"), ("hair", "hair")]
)
def test_parse_regions_maps_argmax_class(cls, region):
    """A head that always predicts ``cls`` yields that class's region everywhere."""
    model = BiSeNet()
    model.load_state_dict(_random_state(_layout()), strict=True)
    head = model.conv_out
    with torch.no_grad():
        head.conv.bn.weight.zero_()  # ReLU(0 * x + 1) == 1 at every pixel
        head.conv.bn.bias.fill_(1.0)
        head.conv_out.weight.zero_()
        head.conv_out.weight[CELEBAMASK_CLASSES.index(cls)] = 1.0
    labels = parse_regions(model.eval(), np.zeros((1, 30, 20, 3), dtype=np.uint8))
    assert labels.shape == (1, 30, 20)
    assert torch.all(labels == REGION_CODES[region])


def test_class_names_and_region_mapping():
    assert len(CELEBAMASK_CLASSES) == 19 and CELEBAMASK_CLASSES[0] == "background"
    assert CELEBAMASK_CLASSES[1] == "skin" and CELEBAMASK_CLASSES[17] == "hair"
    assert CELEBAMASK_TO_REGION.dtype == np.uint8 and CELEBAMASK_TO_REGION.shape == (19,)
    expected = {
        "skin": "skin", "l_ear": "skin", "r_ear": "skin",
        "l_brow": "brows", "r_brow": "brows",
        "l_eye": "eyes", "r_eye": "eyes", "eye_g": "eyes",
        "nose": "nose",
        "mouth": "mouth", "u_lip": "mouth", "l_lip": "mouth",
        "hair": "hair",
    }  # fmt: skip
    for index, name in enumerate(CELEBAMASK_CLASSES):
        want = REGION_CODES[expected[name]] if name in expected else 0
        assert CELEBAMASK_TO_REGION[index] == want, name
    for name in ("background", "ear_r", "neck", "neck_l", "cloth", "hat"):
        assert CELEBAMASK_TO_REGION[CELEBAMASK_CLASSES.index(name)] == 0


def test_preprocess_imagenet_normalisation():
    image = torch.full((1, 64, 64, 3), 124, dtype=torch.uint8)
    x = _preprocess(image)
    assert x.shape == (1, 3, 512, 512)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x[0, :, 100, 200], (124 / 255 - mean) / std)


def test_resize_nearest_keeps_blocks():
    labels = torch.tensor([[[1, 2], [3, 4]]], dtype=torch.uint8)
    up = _resize_nearest(labels, 4, 6)
    assert up.tolist() == [[[1, 1, 1, 2, 2, 2]] * 2 + [[3, 3, 3, 4, 4, 4]] * 2]
    torch.testing.assert_close(_resize_nearest(up, 2, 2), labels)


def test_load_parser_roundtrip(tmp_path):
    path = tmp_path / "79999_iter.pth"
    state = _random_state(_layout(), seed=1)
    torch.save(state, path)
    model = load_parser(path, "cpu")
    assert not model.training
    torch.testing.assert_close(model.cp.resnet.conv1.weight, state["cp.resnet.conv1.weight"])


def test_load_parser_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_parser(tmp_path / "nope.pth")
    message = str(info.value)
    assert "79999_iter.pth" in message and "--parser-weights" in message
    assert "\n" not in message


def test_load_parser_wrong_layout(tmp_path):
    state = _random_state(_layout())
    del state["conv_out.conv_out.weight"]
    state["conv_out32.conv_out.weight"] = torch.zeros(5, 64, 1, 1)  # 5 classes, not 19
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="conv_out.conv_out.weight") as info:
        load_parser(path)
    assert "extra.weight" in str(info.value) and "conv_out32.conv_out.weight" in str(info.value)


def test_load_parser_not_a_checkpoint(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError):
        load_parser(path)
