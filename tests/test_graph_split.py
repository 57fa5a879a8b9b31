"""Cutting external models at a layer, and the CAM-readiness check, on hand-built nets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from saliency.models.adopted.graph import SplitError, cut_model
from saliency.models.adopted.net import (
    AdoptedNet,
    cam_check,
    detect_output,
    parse_slice,
    to_logits,
)
from saliency.models.adopted.weights import read_state_dict


class GapNet(nn.Module):
    """conv -> relu -> global mean -> linear -> softmax: CAM-ready under the softmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return torch.softmax(self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3))), dim=1)


class SkipNet(nn.Module):
    """The head reads an activation from before the last block (a skip past the cut)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        early = torch.relu(self.a(x))
        late = torch.relu(self.b(early))
        return self.fc(torch.cat([early.mean((2, 3)), late.mean((2, 3))], 1))


def test_cut_finds_the_last_map_strips_softmax_and_recomposes_the_logits():
    torch.manual_seed(0)
    net, x = GapNet().eval(), torch.randn(5, 3, 8, 8)
    cut = cut_model(net, x)
    assert cut.softmax == "softmax" and cut.node == "relu"
    maps = cut.features(x)
    assert maps.shape == (5, 4, 8, 8)
    with torch.no_grad():
        logits = net.fc(torch.relu(net.conv(x)).mean((2, 3)))
    torch.testing.assert_close(cut.rest(maps), logits)
    check = cam_check(lambda m: to_logits(cut.rest(m), "logits", None), maps, cut.node)
    assert check.ready and check.deviation < 1e-5
    torch.testing.assert_close(check.fc.weight, net.fc.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(check.fc.bias, net.fc.bias, rtol=1e-5, atol=1e-6)


def test_a_head_that_reaches_past_the_cut_is_refused():
    torch.manual_seed(0)
    net, x = SkipNet().eval(), torch.randn(2, 3, 8, 8)
    with pytest.raises(SplitError, match="also read relu"):
        cut_model(net, x)


def test_a_named_module_is_kept_whole_and_cut_after():
    from collections import OrderedDict

    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 1))
    parts = [("block", block), ("pool", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()),
             ("fc", nn.Linear(4, 2))]  # fmt: skip
    net, x = nn.Sequential(OrderedDict(parts)).eval(), torch.randn(3, 3, 6, 6)
    assert cut_model(net, x).node == "block_2"  # the default: the last 4-D map, pool excluded
    cut = cut_model(net, x, target="block")
    assert cut.node == "block"
    torch.testing.assert_close(cut.features(x), block(x))
    torch.testing.assert_close(cut.rest(cut.features(x)), net(x))


def test_flatten_head_is_not_cam_ready_and_says_why():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 2))
    x = torch.randn(4, 3, 4, 4)
    cut = cut_model(net.eval(), x)
    model = AdoptedNet(cut.features, cut.rest, None, 2)
    check = cam_check(model.raw_head, cut.features(x), cut.node)
    assert not check.ready and "not a linear map of the globally pooled" in check.reason
    # constant maps cannot tell it from GAP -> linear: the shuffled cells and noise do
    assert check.deviation > 1e-3


def test_output_kinds_slices_and_state_dict_prefixes(tmp_path):
    z = torch.tensor([[2.0, -1.0, 0.5, 0.0]])
    assert detect_output(z, None) == "logits"
    assert detect_output(torch.softmax(z, 1), (1, 3)) == "probabilities"
    assert detect_output(torch.log_softmax(z, 1), None) == "log-probabilities"
    # probabilities -> log: softmax of the result is the renormalized slice
    p = torch.softmax(z, 1)
    got = torch.softmax(to_logits(p, "probabilities", (1, 3)), 1)
    torch.testing.assert_close(got, torch.softmax(z[:, 1:3], 1))
    # one probability -> its log-odds
    torch.testing.assert_close(to_logits(torch.tensor([[0.8]]), "probabilities", None),
                               torch.tensor([[float(torch.logit(torch.tensor(0.8)))]]))  # fmt: skip
    assert parse_slice("7:9") == (7, 9) and parse_slice(None) is None
    with pytest.raises(ValueError, match="START:STOP"):
        parse_slice("7-9")
    path = tmp_path / "w.pt"
    torch.save({"model_state_dict": {"module._orig_mod.fc.weight": torch.ones(2)}}, path)
    assert list(read_state_dict(path)) == ["fc.weight"]
