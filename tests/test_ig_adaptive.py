"""Adaptive Integrated Gradients on models whose path integral is known in closed form.

The rule (saliency.methods.ig_adaptive): nested trapezoid levels, level L has 2^L + 1 path
points (spacing h = 2^-L); an image stops at the first level L >= 2 where its completeness
error is within max(tolerance |delta|, abs_floor) and its map moved by at most twice the
tolerance (relative L2) since level L - 1; or at the last level within the cap, flagged. The
expected counts below are worked out by hand from the models' integrands, never read from
the code.
"""

import math

import pytest
import torch
from torch import nn

from saliency.methods.ig import integrated_gradients
from saliency.methods.ig_adaptive import adaptive_integrated_gradients

SETTLE = 2  # the rule's map-settled bound, times the tolerance, as documented


class Counted(nn.Module):
    """Wraps a score function ``[B, 3, H, W] -> [B]`` as a one-logit model and counts the
    rows of every call."""

    def __init__(self, fn):
        super().__init__()
        self.fn, self.calls = fn, []

    def forward(self, x):
        self.calls.append(len(x))
        return self.fn(x).view(-1, 1)


def kinked(t: float):
    """S(x) = relu(sum(x) - t) + sum(x) / 2: on the path from black to an image whose pixels
    sum to 1, S(alpha) = relu(alpha - t) + alpha / 2, so delta = 3/2 - t and the integrand
    dS/dalpha is 1/2 below alpha = t and 3/2 above (one kink)."""
    return Counted(lambda x: torch.relu(x.sum(dim=(1, 2, 3)) - t) + x.sum(dim=(1, 2, 3)) / 2)


def level_error(level: int) -> float:
    """|sum(map) - delta| of the trapezoid with h = 2^-L for the kink at t = 1/3: only the
    interval holding the kink is wrong, by h |1/2 - frac(2^L / 3)| = h / 6 (frac is 1/3 or
    2/3 at every level)."""
    return 2.0**-level / 6


def test_a_linear_model_stops_at_the_first_level_with_its_exact_map():
    """S = w . x: the integrand is constant, every level is exact and levels 1 and 2 give the
    same map, so each image stops at level 2 (5 path points) with the map (x - b) w."""
    torch.manual_seed(0)
    w = torch.randn(1, 3, 6, 6)
    model = Counted(lambda x: (x * w).sum(dim=(1, 2, 3)))
    x, b = torch.randn(3, 3, 6, 6), torch.randn(1, 3, 6, 6)
    res = adaptive_integrated_gradients(model, x, torch.tensor([1, 0, 1]), b, 1e-3, 0.0, 257)
    expected = (x - b) * w
    expected[1] *= -1  # class 0 of a one-logit model scores -z
    torch.testing.assert_close(res.attributions, expected, rtol=1e-5, atol=1e-6)
    assert res.steps.tolist() == [5, 5, 5] and not res.capped.any()
    assert float(res.error.max()) < 1e-5
    assert sum(model.calls) == 15  # delta came from the path's own ends: no extra pass


@pytest.mark.parametrize("tolerance", [0.1, 0.01, 0.001])
def test_one_kink_reaches_the_tolerance_at_the_level_worked_out_by_hand(tolerance):
    """Kink at 1/3, delta = 7/6: the relative error at level L is (2^-L / 6) / (7/6) =
    1 / (7 * 2^L). The map is uniform, so its relative change between levels L - 1 and L is
    the change of its sum: the errors alternate in sign (e_L = h_L (frac(2^L / 3) - 1/2)),
    |e_L - e_(L-1)| = 3 h_L / 6, over |sum| = 7/6 + e_L. Expected level: the first L >= 2
    where both are within bounds: 5, 33 and 257 path points for 10%, 1% and 0.1%
    (at 1% the map's move, bounded by twice the tolerance, decides: completeness alone
    holds from 17)."""
    x = torch.full((1, 3, 4, 4), 1 / 48)  # sums to 1
    model = kinked(1 / 3)
    res = adaptive_integrated_gradients(model, x, torch.tensor([1]), torch.zeros_like(x),
                                        tolerance, 0.0, 1025)  # fmt: skip
    level = 2
    while True:
        h = 2.0**-level
        e = h * ((2**level / 3) % 1 - 0.5)
        moved = 3 * h / 6 / abs(7 / 6 + e)
        if level_error(level) / (7 / 6) <= tolerance and moved <= SETTLE * tolerance:
            break
        level += 1
    assert 2**level + 1 == {0.1: 5, 0.01: 33, 0.001: 257}[tolerance]
    assert int(res.steps[0]) == 2**level + 1
    assert not bool(res.capped[0])
    assert float(res.delta[0]) == pytest.approx(7 / 6, rel=1e-6)
    assert float(res.error[0]) == pytest.approx(level_error(level) / (7 / 6), rel=1e-4)


def test_refinement_reuses_every_pass_and_keeps_every_call_full():
    """Four images of different difficulty share the model calls: the rows that reach the
    model are exactly the path points the images took (each level adds only midpoints, the
    ends give delta), and every call but the last is full."""
    torch.manual_seed(1)
    x = torch.rand(4, 3, 4, 4)
    scale = torch.tensor([1.0, 0.5, 0.9, 0.2]).view(-1, 1, 1, 1)
    x = x / x.sum(dim=(1, 2, 3), keepdim=True) * scale
    model, black = kinked(0.3), torch.zeros_like(x)
    res = adaptive_integrated_gradients(model, x, torch.ones(4, dtype=torch.long), black,
                                        0.002, 0.0, 513, internal_batch=7)  # fmt: skip
    assert len(set(res.steps.tolist())) > 1  # the images did need different work
    assert sum(model.calls) == int(res.steps.sum())
    assert model.calls[:-1] == [7] * (len(model.calls) - 1)
    # each image's map is the plain trapezoid rule at its own count: nothing was lost or
    # counted twice between levels
    for i in range(4):
        one = slice(i, i + 1)
        ref = integrated_gradients(model, x[one], torch.tensor([1]), black[one],
                                   int(res.steps[i]), "riemann_trapezoid")  # fmt: skip
        torch.testing.assert_close(res.attributions[one], ref.attributions, rtol=1e-4, atol=1e-7)


def test_an_image_that_cannot_converge_stops_at_the_cap_and_is_flagged():
    """S = 2 [sum of channel 0 > 1/2] + sum of channel 1. Image 0 (channel 0 only) meets a
    step: the gradient is 0 on its whole path, its map stays 0 and delta is 2, so no level is
    complete; with a cap of 100 the last level that fits is 6 (65 points). Image 1 (channel
    1 only) is linear and stops at level 2 (5 points), though it shares the calls."""

    def fn(x):
        return 2.0 * (x[:, 0].sum(dim=(1, 2)) > 0.5).float() + x[:, 1].sum(dim=(1, 2))

    x = torch.zeros(2, 3, 2, 2)
    x[0, 0], x[1, 1] = 0.25, 0.25
    res = adaptive_integrated_gradients(Counted(fn), x, torch.tensor([1, 1]), torch.zeros_like(x),
                                        0.05, 0.01, 100)  # fmt: skip
    assert res.steps.tolist() == [65, 5]
    assert res.capped.tolist() == [True, False]
    assert float(res.error[0]) == pytest.approx(1.0)
    assert float(res.error[1]) < 1e-6


def test_a_completeness_that_holds_by_a_lucky_cancellation_does_not_stop_the_image():
    """Two pixels p, q (value 1, black baseline); S = relu(x_p - 1/3) + relu(x_q - 2/3).
    At level L pixel p's map is off by e = h (frac(2^L / 3) - 1/2) = +-h/6 and pixel q's by
    exactly -e (its kink sits at 1 - 1/3): the sum of the map equals delta = 1 at every level,
    so completeness alone would stop at level 2. The map itself moves by |e_L - e_(L-1)| =
    h_L / 2 per pixel between levels, relative L2 (h_L / 2) sqrt(2) / ||m_L||, with
    m_L = (2/3 + e_L, 1/3 - e_L): with a 5% tolerance, above 10% at levels 2 and 3, below at
    4."""

    def fn(x):
        return torch.relu(x[:, 0, 0, 0] - 1 / 3) + torch.relu(x[:, 0, 0, 1] - 2 / 3)

    x = torch.zeros(1, 3, 1, 2)
    x[0, 0, 0] = 1.0
    level = 2
    while True:  # the first level >= 2 whose map moved by at most 10%
        h = 2.0**-level
        e = h * ((2**level / 3) % 1 - 0.5)
        moved = h / 2 * math.sqrt(2) / math.hypot(2 / 3 + e, 1 / 3 - e)
        if moved <= SETTLE * 0.05:
            break
        level += 1
    assert level == 4
    args = (Counted(fn), x, torch.tensor([1]), torch.zeros_like(x), 0.05, 0.0, 257)
    res = adaptive_integrated_gradients(*args)
    assert int(res.steps[0]) == 2**level + 1 and not bool(res.capped[0])
    assert float(res.error[0]) < 1e-6  # complete all along
    lucky = adaptive_integrated_gradients(*args, settle=math.inf)  # completeness alone
    assert int(lucky.steps[0]) == 5


def test_explain_records_each_images_points_and_flags_the_capped(tiny_run, tmp_path, capsys):
    """``explain`` with the default (auto): index.csv gives each image's path points (a level's
    2^L + 1, within the cap) and whether it stopped at the cap; every image not capped meets
    the completeness rule on its stored map; meta.json records the tolerance, floor and cap;
    the summary says how many were capped. A cap of 5 points stops every image that level 2
    does not satisfy, and the warning names the cap. Other settings are another resume key."""
    import shutil

    import numpy as np

    from saliency.cli import main
    from saliency.methods.store import read_maps

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("saliency", "averages"))
    argv = ["explain", "--run", str(run), "--methods", "ig", "--workers", "0", "--limit", "8"]
    assert main(argv) == 0
    said = capsys.readouterr().out
    maps, index, meta = read_maps(run / "saliency" / "test" / "ig")
    assert index["ig_steps"].dtype == np.int64 and index["ig_capped"].dtype == bool
    levels = {2**k + 1 for k in range(2, 9)}
    assert set(index["ig_steps"]) <= levels
    assert {k: meta["ig"][k] for k in ("n_steps", "tolerance", "abs_floor", "cap")} == {
        "n_steps": "auto", "tolerance": 0.05, "abs_floor": 0.05, "cap": 257}  # fmt: skip
    miss = np.abs(maps.sum(axis=(1, 2), dtype=np.float64) - index["ig_delta"])
    bound = np.maximum(0.05 * index["ig_delta"].abs(), 0.05)
    done = ~index["ig_capped"]
    assert (miss[done] <= bound[done] * (1 + 1e-3) + 1e-5).all()
    capped = int(index["ig_capped"].sum())
    assert f"{capped} of 8 image(s) capped" in said
    # a cap of 5 path points: level 2 or nothing
    argv += ["--ig-cap", "5", "--overwrite"]
    assert main(argv) == 0
    said = capsys.readouterr().out
    _, index, meta = read_maps(run / "saliency" / "test" / "ig")
    assert set(index["ig_steps"]) == {5} and meta["ig"]["cap"] == 5
    capped = int(index["ig_capped"].sum())
    assert capped > 0, "some of 8 images were expected to need more than 5 points"
    assert f"warning: {capped} image(s) reached the IG cap of 5 path points" in said
    # another tolerance is another key: the maps are not mixed
    assert main(argv[:-3] + ["--ig-tolerance", "0.02"]) == 2
    assert "made with other settings" in capsys.readouterr().err


def test_the_steps_setting_takes_auto_or_a_number_in_every_spelling(capsys, tmp_path):
    """One field, three spellings: the flag, the study TOML's key and the config; auto is
    the default, a number keeps the fixed rule, anything else is one line and exit 2."""
    from saliency.cli import main
    from saliency.methods.ig_settings import IGConfig
    from saliency.study.config import merge, schema

    defaults = schema("explain")
    assert defaults["ig"]["n_steps"] == "auto" and IGConfig().adaptive
    assert merge("explain", defaults, {"ig": {"n_steps": 8}})["ig"]["n_steps"] == 8
    assert not IGConfig(n_steps=8).adaptive
    with pytest.raises(ValueError, match="n_steps must be auto or a positive number"):
        IGConfig(n_steps="many")
    with pytest.raises(ValueError, match="cap must allow at least 5"):
        IGConfig(cap=4)
    assert main(["explain", "--run", str(tmp_path), "--ig-n-steps", "many"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "neither auto nor a number" in err
