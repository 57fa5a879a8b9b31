"""BiSeNet face parser: checkpoint layout, shapes, class-to-region mapping, loading errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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
    """A parser with torch's default random weights (seeded): unlike ``_random_state``'s
    (one class everywhere), its argmax takes a dozen classes, so the mapping has work to do."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return BiSeNet().eval()


# DESIGN.md, "Regions": CelebAMask-HQ's classes skin 1, brows 2/3, eyes 4/5, glasses 6,
# ears 7/8, nose 10, mouth 11, lips 12/13, hair 17 (glasses cover the eyes; ears are skin);
# every other class (background, earring, neck, necklace, cloth, hat) is no region
CLASS_TO_REGION = {1: "skin", 2: "brows", 3: "brows", 4: "eyes", 5: "eyes", 6: "eyes",
                   7: "skin", 8: "skin", 10: "nose", 11: "mouth", 12: "mouth", 13: "mouth",
                   17: "hair"}  # fmt: skip


def _parser_input(images: np.ndarray) -> torch.Tensor:
    """By hand, upstream's test.py: resize to 512 px bilinearly (antialiased, rounded to
    integers), scale to [0, 1], normalize with ImageNet's mean and std."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, (512, 512), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x.round().clamp(0, 255) / 255 - mean) / std


def _regions_by_hand(model: BiSeNet, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The region codes ``[N, H, W]`` the parser's own logits give, by hand: the argmax over
    the 19 classes at 512 px, through CLASS_TO_REGION, sampled back at ``H x W`` pixel centres
    (nearest); and where the top two logits are more than 1e-6 apart (about 5e-5 of their
    spread; elsewhere another batch composition may flip the argmax)."""
    with torch.no_grad():
        logits = model(_parser_input(images))  # [N, 19, 512, 512]
    top2 = logits.topk(2, dim=1).values
    classes, clear = logits.argmax(1).numpy(), (top2[:, 0] - top2[:, 1] > 1e-6).numpy()
    lut = np.zeros(19, np.uint8)
    for cls, region in CLASS_TO_REGION.items():
        lut[cls] = REGION_CODES[region]
    n, h, w = images.shape[:3]
    rows = np.floor((np.arange(h) + 0.5) * 512 / h).astype(int)
    cols = np.floor((np.arange(w) + 0.5) * 512 / w).astype(int)
    pick = np.ix_(np.arange(n), rows, cols)
    return lut[classes][pick], clear[pick]


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


def test_forward_is_the_main_head_upsampled_and_forward_all_adds_the_auxiliaries(parser):
    """Upstream's forward, composed by hand: the main head on the fused 1/8 features and the
    auxiliary heads on the context path's 1/8 and 1/16 maps, each upsampled bilinearly with
    aligned corners (out[y] = sum_k max(0, 1 - |y (h - 1) / (H - 1) - k|) low[k])."""
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        main = parser(x)
        outs = parser.forward_all(x)
        feat8, cp8, cp16 = parser.cp(x)
        low = (parser.conv_out(parser.ffm(feat8, cp8)), parser.conv_out16(cp8),
               parser.conv_out32(cp16))  # fmt: skip
    assert [tuple(o.shape) for o in low] == [(2, 19, 8, 6), (2, 19, 8, 6), (2, 19, 4, 3)]

    def aligned(n_out: int, n_in: int) -> torch.Tensor:  # [n_out, n_in] interpolation weights
        pos = torch.arange(n_out, dtype=torch.float64) * (n_in - 1) / (n_out - 1)
        return (1 - (pos[:, None] - torch.arange(n_in)).abs()).clamp(min=0)

    for got, small in zip(outs, low, strict=True):
        ry, rx = aligned(64, small.shape[2]), aligned(48, small.shape[3])
        want = torch.einsum("yi,ncij,xj->ncyx", ry, small.double(), rx).float()
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(main, outs[0], rtol=0, atol=0)
    assert (outs[1] - outs[0]).abs().max() > 0.1  # the auxiliaries are other heads


def test_parse_regions_is_the_mapped_argmax_of_the_parsers_logits(parser):
    """On random weights: the regions are the hand-mapped argmax of the logits (at the
    pixels where the argmax is clear, all but a handful), whatever the batching, numpy or
    torch input."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 40, 56, 3), dtype=np.uint8)
    labels = parse_regions(parser, images, batch_size=1)  # batches of 1; by hand: one of 2
    assert labels.dtype == torch.uint8 and labels.shape == (2, 40, 56)
    want, clear = _regions_by_hand(parser, images)
    assert clear.mean() > 0.999
    np.testing.assert_array_equal(labels.numpy()[clear], want[clear])
    assert len(np.unique(want)) >= 4  # several regions, not one constant
    torch.testing.assert_close(parse_regions(parser, torch.from_numpy(images[:1])), labels[:1])


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
