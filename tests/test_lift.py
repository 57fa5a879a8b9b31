"""The lift over a null model (issue 19's "recovered"), on constructed shares."""

import numpy as np
import pytest

from saliency.analysis.recovered import lift, lift_leader, logit

REGIONS = ["eyes", "brows", "nose"]


def test_against_a_uniform_null_lambda_is_logit_share_minus_logit_area():
    rng = np.random.default_rng(0)
    shares = rng.dirichlet([4, 2, 1], size=30)
    area = np.array([0.2, 0.3, 0.5])
    out = lift(shares, np.tile(area, (30, 1)), n_boot=50)
    expected = logit(shares.mean(0)) - logit(area)
    np.testing.assert_allclose(out["lambda"][0], expected, rtol=1e-12)


def test_identical_images_give_a_point_interval_and_the_exact_margin():
    shares = np.tile([0.6, 0.3, 0.1], (20, 1))
    null = np.tile([0.2, 0.3, 0.5], (20, 1))
    out = lift(shares, null, n_boot=100)
    lam = logit(np.array([0.6, 0.3, 0.1])) - logit(np.array([0.2, 0.3, 0.5]))
    for k in range(3):  # every resample is the same sample
        np.testing.assert_allclose(out["lambda"][:, k], lam[k], rtol=1e-12)
    assert out["margin"][0, 0] == pytest.approx(lam[0] - max(lam[1], lam[2]), rel=1e-12)
    assert lift_leader(REGIONS, out) == "eyes"


def test_a_null_equal_to_the_model_has_no_leader():
    rng = np.random.default_rng(1)
    shares = rng.dirichlet([3, 3, 3], size=40)
    out = lift(shares, shares, n_boot=200)
    np.testing.assert_allclose(out["lambda"], 0.0, atol=1e-12)
    assert lift_leader(REGIONS, out) is None


def test_the_bootstrap_is_paired():
    # per-image shares vary a lot, but the null is the model's share minus a constant
    # everywhere: paired resampling keeps the nose's lead over the others in every draw
    rng = np.random.default_rng(2)
    base = rng.uniform(0.05, 0.3, size=(25, 3))
    shares = base.copy()
    shares[:, 2] += 0.3
    out = lift(shares, base, n_boot=500)
    assert lift_leader(REGIONS, out) == "nose"
    assert out["margin"][1, 2] > 0.5  # clearly above zero
    unpaired = lift(shares, base[rng.permutation(25)], n_boot=500)
    assert (
        unpaired["margin"][2, 2] - unpaired["margin"][1, 2]
        > out["margin"][2, 2] - out["margin"][1, 2]
    )  # pairing narrows the interval
