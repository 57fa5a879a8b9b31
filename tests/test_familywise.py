"""The family-wise ablation leader (issue 34): simultaneous intervals and adjusted p-values
from one bootstrap max-t (saliency.analysis.familywise), and the leader rule on them.

Simulated "readers": per-image drops of six regions, heavy-tailed (t with 5 degrees of
freedom) and of unequal spread, as region deletions give. Every rate below was measured on
exactly these seeds (numpy's generators are the same on every CPU), with the max-t
studentized within each draw: with every true effect zero, the family-wise rule declares a
leader in 9 of 400 data sets (2.25%, under the nominal 5%), where the rule before it (the
largest drop with an unadjusted 95% interval) declared one in 48 (12%). With one region's
true drop 0.02 (about 7 standard errors), the rule names that region in 199 of 200 data sets
and never another one. The price is power near the edge: at a true drop of 0.01 (seed 3)
it names the region in 141 of 200 and another region in 3, where the old rule named it in
162 and another region in 14."""

from __future__ import annotations

import numpy as np
import pytest

from saliency.analysis.familywise import max_t
from saliency.analysis.recovered import ablation_leader
from saliency.analysis.stats import bootstrap

REGIONS = ["eyes", "brows", "nose", "mouth", "skin", "hair"]
SD = np.array([0.01, 0.02, 0.03, 0.01, 0.05, 0.02])


def _drops(rng, n=80, mean=None):
    x = rng.standard_t(5, size=(n, len(SD))) * SD
    return x if mean is None else x + mean


def test_a_region_without_effect_leads_at_most_at_the_nominal_family_wise_rate():
    rng = np.random.default_rng(1)
    new = old = 0
    for i in range(400):
        x = _drops(rng)
        fw = max_t(x, n_boot=500, seed=i)
        new += ablation_leader(REGIONS, fw.estimate, fw.low) is not None
        est, lo, _ = bootstrap(x, n_boot=500, seed=i)  # the rule before issue 34
        old += ablation_leader(REGIONS, est, lo) is not None
    assert new / 400 <= 0.05, new  # measured: 9 of 400
    assert old / 400 > 0.08, old  # measured: 48 of 400; why the family needs adjusting


def test_the_planted_region_is_still_the_leader():
    rng = np.random.default_rng(2)
    mean = np.zeros(len(SD))
    mean[REGIONS.index("brows")] = 0.02
    found = []
    for i in range(200):
        fw = max_t(_drops(rng, mean=mean), 500, i)
        found.append(ablation_leader(REGIONS, fw.estimate, fw.low))
    assert found.count("brows") >= 195 and set(found) <= {"brows", None}, found  # 199


def test_interval_and_adjusted_p_are_one_test():
    """An interval excludes zero exactly when its p-value is below 5% (up to the draws'
    granularity), the intervals are wider than one effect's own, and the p-values are at
    least the unadjusted ones."""
    rng = np.random.default_rng(3)
    for i in range(30):
        x = _drops(rng, mean=rng.normal(0, 0.006, len(SD)))
        fw = max_t(x, n_boot=2000, seed=i)
        excludes = (fw.low > 0) | (fw.high < 0)
        clear = np.abs(fw.p - 0.05) > 0.005
        assert (excludes[clear] == (fw.p[clear] < 0.05)).all(), (fw.low, fw.high, fw.p)
        est, lo, hi = bootstrap(x, n_boot=2000, seed=i)
        np.testing.assert_allclose(fw.estimate, est)
        assert ((fw.high - fw.low) > (hi - lo)).all()
        assert fw.size == len(SD) and fw.critical > 1.96


def test_effects_without_spread_are_points_and_nan_columns_are_left_out():
    rng = np.random.default_rng(4)
    half = np.where(np.arange(40) < 20, np.nan, rng.normal(0, 0.01, 40))
    x = np.column_stack([rng.normal(0.05, 0.01, 40), np.zeros(40), np.full(40, 0.02), half])
    fw = max_t(x, n_boot=999, seed=0)
    assert fw.size == 2  # the two columns with spread make the family
    assert fw.low[1] == fw.high[1] == 0 and fw.p[1] == 1  # exactly no change
    assert fw.low[2] == fw.high[2] == pytest.approx(0.02) and fw.p[2] == 1 / 1000
    assert fw.estimate[3] == pytest.approx(np.nanmean(x[:, 3]))  # NaN images left out
    assert fw.p[0] == 1 / 1000 and fw.low[0] > 0


def _shares(rng, n, lead=None, boost=0.0):
    """A per-image share table (``image``, ``share_<r>``, ``area_<r>``): Dirichlet shares,
    ``lead``'s share raised by ``boost`` before renormalizing."""
    import pandas as pd

    s = rng.dirichlet(np.full(len(REGIONS), 5.0), size=n)
    if lead is not None:
        s[:, REGIONS.index(lead)] += boost
        s /= s.sum(1, keepdims=True)
    area = np.tile([0.02, 0.02, 0.03, 0.03, 0.5, 0.2], (n, 1))
    cols = {f"share_{r}": s[:, k] for k, r in enumerate(REGIONS)}
    cols |= {f"area_{r}": area[:, k] for k, r in enumerate(REGIONS)}
    return pd.DataFrame({"image": [f"{i}.png" for i in range(n)], **cols})


def test_a_null_with_a_small_real_association_withholds_the_verdict_with_the_reason():
    """The model's evidence names the brows (ablation and lift over the null); a null whose
    shuffled labels left a small real association with the brows (a drop of 0.02, a share
    raised over the floor's) names the brows too, so the model's verdict is withheld and the
    row says why; a null without it leaves the verdict standing."""
    import pandas as pd

    from saliency.analysis.validation import drop_evidence, method_verdict, paired_lift, withhold

    rng = np.random.default_rng(5)
    n, brows = 120, np.zeros(len(SD))
    brows[REGIONS.index("brows")] = 0.02

    def drops(mean):
        x = _drops(rng, n=n, mean=mean)
        return drop_evidence(pd.DataFrame({f"drop_{r}": x[:, k] for k, r in enumerate(REGIONS)}),
                             REGIONS, 500, 0)  # fmt: skip

    model = _shares(rng, n, "brows", 0.6)
    floor = _shares(rng, n)
    judged = (True, "")
    verdicts = {}
    for name, null_mean, null_boost in (("associated", brows, 0.25), ("silent", 0 * brows, 0.0)):
        null = _shares(rng, n, "brows", null_boost)
        lifted, _ = paired_lift(model, null, REGIONS, 500, 0)
        row = method_verdict("ig", REGIONS, drops(brows * 5), model, lifted, judged, ["brows"],
                             500, 0)  # fmt: skip
        assert row["recovered"] == "brows", row
        null_lift, _ = paired_lift(null, floor, REGIONS, 500, 0)
        nrow = method_verdict("ig", REGIONS, drops(null_mean), null, null_lift, judged, None,
                              500, 0)  # fmt: skip
        verdicts[name] = withhold(row, nrow["recovered"])
    held = verdicts["associated"]
    assert held["null_recovered"] == "brows" and held["recovered"] == "" and held["correct"] is None
    assert held["withheld"] == "brows" and held["verdict"].startswith("withheld: the null model")
    kept = verdicts["silent"]
    assert kept["null_recovered"] == "" and kept["recovered"] == "brows" and kept["withheld"] == ""


def test_k_nulls_pool_one_permutations_association_away_and_keep_the_recipes():
    """`saliency null --seeds K`: the nulls' own verdict is the pooled nulls' (per image,
    their mean drop and share). An association left by one permutation (one null of five
    drops the brows by 0.02 and raises their share) is diluted to a fifth and the pooled
    nulls recover nothing, while that null's own verdict, reported beside, still names the
    brows; an association every null learns (the recipe's, not a permutation's) stays, and
    the model's verdict is withheld."""
    import pandas as pd

    from saliency.analysis.validation import null_verdict, withhold

    rng = np.random.default_rng(6)
    n, k = 120, 5
    brows = np.zeros(len(SD))
    brows[REGIONS.index("brows")] = 0.02
    paths = [f"{i}.png" for i in range(n)]

    def drop_table(mean):
        x = _drops(rng, n=n, mean=mean)
        return pd.DataFrame(
            {"path": paths, **{f"drop_{r}": x[:, j] for j, r in enumerate(REGIONS)}}
        )

    floor = _shares(rng, n)
    judged = (True, "")
    one = [(drop_table(brows), _shares(rng, n, "brows", 0.25))]
    one += [(drop_table(0 * brows), _shares(rng, n)) for _ in range(k - 1)]
    drops, shares = zip(*one, strict=True)
    row, each = null_verdict("ig", REGIONS, drops, shares, floor, judged, 500, 0)
    assert each == ["brows"] + ["nothing"] * (k - 1), each
    assert row["recovered"] == "", row
    model = {"method": "ig", "recovered": "brows", "correct": True, "verdict": "judged"}
    assert withhold(model, row["recovered"])["recovered"] == "brows"
    every = [(drop_table(brows), _shares(rng, n, "brows", 0.25)) for _ in range(k)]
    drops, shares = zip(*every, strict=True)
    row, each = null_verdict("ig", REGIONS, drops, shares, floor, judged, 500, 0)
    assert each == ["brows"] * k and row["recovered"] == "brows", (row, each)
    assert withhold(model, row["recovered"])["withheld"] == "brows"
