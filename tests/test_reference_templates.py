"""The five reference projects' templates (analyses/ref_*.toml): each parses with and without
its quick profile, keeps the recipe in the quick profile, builds its model, and takes one
training step with the recipe's optimizer, schedule and frozen blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from saliency.imsize import hw
from saliency.models import optim
from saliency.models.zoo import ModelSpec, build_model
from saliency.study.config import build_config, load

ANALYSES = Path(__file__).resolve().parent.parent / "analyses"
TEMPLATES = sorted(ANALYSES.glob("ref_*.toml"))
RECIPE = ("arch", "loss", "optimizer", "scheduler", "freeze", "lr")
SIDE = {"inception_v3": 80, "inception_resnet_v2": 160}  # the step's input: small but valid


def test_there_is_one_template_per_reference_project():
    assert len(TEMPLATES) == 5, TEMPLATES


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_a_template_parses_builds_its_model_and_takes_a_step(path):
    study, quick = load(path), load(path, "quick")
    cfg = build_config("train", study.stages["train"], manifest="m.csv", out="o")
    fast = build_config("train", quick.stages["train"], manifest="m.csv", out="o")
    for key in RECIPE:  # quick shrinks data, size and epochs only
        assert getattr(fast, key) == getattr(cfg, key), key
    assert np.prod(hw(fast.size)) <= np.prod(hw(cfg.size)) and fast.epochs <= cfg.epochs
    torch.manual_seed(0)
    n_out = 1 if cfg.loss == "bce" else 2
    spec = ModelSpec(cfg.arch, n_out, cfg.loss, cfg.output_stride, cfg.se, cfg.dropout)
    model = build_model(spec).train()
    frozen = optim.freeze(model, cfg.freeze)
    optim.hold_frozen(frozen)
    opt = optim.optimizer(model, cfg)
    optim.scheduler(opt, cfg)
    side = SIDE.get(cfg.arch, 64)
    x, y = torch.randn(4, 3, side, side), torch.tensor([0, 1, 0, 1])
    logits = model(x)
    loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], y.float())
            if cfg.loss == "bce" else torch.nn.functional.cross_entropy(logits, y))  # fmt: skip
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss.backward()
    opt.step()
    after = model.state_dict()
    assert not torch.equal(after["fc.weight"], before["fc.weight"])  # the head trains
    for block in frozen:  # and the frozen blocks do not, batch-norm statistics included
        name = next(k for k, m in model.named_modules() if m is block)
        for key in block.state_dict():
            assert torch.equal(after[f"{name}.{key}"], before[f"{name}.{key}"]), key
