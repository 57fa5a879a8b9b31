"""Batched torch fills (the device path) give the OpenCV reference's bytes: exactly with the
CPU's float64 arithmetic, within one grey level with an accelerator's float32."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from saliency.data.imageio import read_label_map, read_rgb
from saliency.data.manifest import read_manifest
from saliency.data.regions import REGIONS
from saliency.perturb.fill import fill_mask, fill_source
from saliency.perturb.fill_torch import ablated_batch, fill_masks_batch
from saliency.perturb.variants import Variants, ablated, fill_place
from saliency.stages.ablate import AblationConfig, ablate_run

# The batched path runs twice: on the CPU in its float64 arithmetic (the reference's bytes),
# and on the model's device as an accelerator runs it: the GPU when the machine has one,
# otherwise the CPU with the accelerator's float32 arithmetic. No machine skips the second
# run, and its id says where it ran.
MODEL_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
PLACES = [
    pytest.param("cpu", False, id="cpu-float64"),
    pytest.param(MODEL_DEVICE, True, id=f"model-device-{MODEL_DEVICE}-float32"),
]


def faces(synth_small, n: int = 6):
    m = read_manifest(synth_small / "manifest.csv")
    images = [read_rgb(m.abspath(p)) for p in m.df["path"][:n]]
    labels = [read_label_map(m.abspath(p)) for p in m.df["mask"][:n]]
    return images, labels


@pytest.mark.parametrize(("device", "accelerated"), PLACES)
@pytest.mark.parametrize("fill", ["blur", "mean", "gray", "noise"])
@pytest.mark.parametrize(("mode", "protect"), [("delete", True), ("delete", False), ("keep", True)])
def test_batched_variants_equal_the_reference(
    synth_small, monkeypatch, device, accelerated, fill, mode, protect
):
    import saliency.perturb.fill_torch as fill_batch

    if accelerated and device == "cpu":  # no accelerator: its float32 arithmetic, here
        monkeypatch.setattr(fill_batch, "work_dtype", lambda device: torch.float32)
    assert fill_batch.work_dtype(torch.device(device)) == (
        torch.float32 if accelerated else torch.float64
    )
    images, labels = faces(synth_small)
    regions = list(REGIONS)
    ref = [ablated(im, lab, regions, fill, mode, 11 + k, protect) for k, (im, lab) in
           enumerate(zip(images, labels, strict=True))]  # fmt: skip
    noise = torch.from_numpy(np.stack([fill_source(im, "noise", 11 + k) for k, im in
                                       enumerate(images)]))  # fmt: skip
    got, areas = ablated_batch(
        torch.from_numpy(np.stack(images)).to(device),
        torch.from_numpy(np.stack(labels)).to(device),
        regions, fill, mode, protect, noise,
    )  # fmt: skip
    want = np.stack([np.stack(variants) for variants, _ in ref])
    diff = np.abs(got.cpu().numpy().astype(int) - want)
    if not accelerated:  # the same float operations in the same order: the same bytes
        assert diff.max() == 0
    else:  # float32 may round a feathered weight's last bit differently: one level, rarely
        assert diff.max() <= 1 and (diff > 0).mean() < (1e-4 if device == "cpu" else 1e-3)
    np.testing.assert_array_equal(areas.cpu().numpy(), [a for _, a in ref])
    changed = want != np.stack(images)[:, None]  # [B, R, H, W, 3]
    assert changed.any(axis=(0, 2, 3, 4)).all()  # every region's variant differs somewhere
    if fill == "blur":  # the box sums are exact in either arithmetic: the source is the same
        box = fill_batch.fill_sources_batch(torch.from_numpy(np.stack(images)).to(device), fill)
        assert np.array_equal(box.cpu().numpy(), np.stack([fill_source(im, fill) for im in images]))


def test_masks_match_on_non_square_maps():
    rng = np.random.default_rng(0)
    labels = np.zeros((2, 40, 56), np.uint8)
    for k in range(2):
        labels[k, rng.integers(5, 20) : 30, 10 : rng.integers(20, 50)] = rng.integers(1, 7)
        labels[k, 2:6, 3:9] = 3  # eyes
    got = fill_masks_batch(torch.from_numpy(labels), list(REGIONS)).numpy()
    want = np.stack([np.stack([fill_mask(lab, r) for r in REGIONS]) for lab in labels])
    np.testing.assert_allclose(got, want, atol=2e-7)
    assert want.max() == 1.0 and (want > 0).any(axis=(0, 2, 3)).sum() >= 2


def test_device_path_is_used_at_the_model_size_and_falls_back_otherwise(synth_small):
    m = read_manifest(synth_small / "manifest.csv")
    paths = [m.abspath(p) for p in m.df["path"][:2]]
    masks = [m.abspath(p) for p in m.df["mask"][:2]]
    cfg = AblationConfig(regions=["eyes", "nose"])
    assert Variants(paths, masks, cfg, 64, "device")[0][1][0] == "raw"
    kind, stack, areas = Variants(paths, masks, cfg, 48, "device")[1][1]
    assert kind == "stack" and stack.shape == (3, 48, 48, 3) and areas.shape == (2,)
    assert fill_place("auto", torch.device("cpu")) == "workers"
    assert fill_place("auto", torch.device("cuda")) == "device"
    with pytest.raises(ValueError, match="valid: auto, device, workers"):
        fill_place("gpu", torch.device("cpu"))


@pytest.mark.parametrize("fill", ["blur", "noise"])
def test_ablate_run_gives_the_same_table_wherever_the_fills_run(tiny_run, fill):
    tables = {}
    for place in ("workers", "device"):
        cfg = AblationConfig(split="test", fill=fill, batch_size=8, fill_on=place, seed=3)
        per, skipped, _ = ablate_run(tiny_run, cfg, torch.device("cpu"), workers=0)
        assert len(skipped) == 0 and len(per) == 6 * per["path"].nunique() > 0
        tables[place] = per
    pd.testing.assert_frame_equal(tables["workers"], tables["device"])
    assert (tables["device"]["score_after"] != tables["device"]["score_before"]).mean() > 0.5
