"""Power and sample size against statsmodels; shadow-mode McNemar and agreement against statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize

from workbench.core.errors import InputError
from workbench.stats.power import days_needed, mde_mean, mde_proportion, plan_mean, plan_proportion, power_at
from workbench.stats.shadow import ShadowCounts, compare_shadow, mcnemar_exact


@pytest.mark.parametrize(
    ("baseline", "mde", "alpha", "power"),
    [(0.62, 0.03, 0.05, 0.8), (0.1, 0.01, 0.05, 0.9), (0.5, -0.05, 0.01, 0.8), (0.03, 0.006, 0.1, 0.8)],
)
def test_n_per_arm_is_statsmodels_normal_power_with_cohens_h_rounded_up(baseline, mde, alpha, power):
    plan = plan_proportion(baseline, mde, alpha=alpha, power=power)
    h = proportion_effectsize(baseline + mde, baseline)
    expected = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=1, alternative="two-sided")
    assert plan.n_per_arm == math.ceil(expected)
    assert plan.total == 2 * plan.n_per_arm


def test_relative_mde_scales_the_baseline():
    assert plan_proportion(0.2, 0.1, relative=True).n_per_arm == plan_proportion(0.2, 0.02).n_per_arm


def test_more_arms_split_alpha_across_the_comparisons_with_control():
    plan = plan_proportion(0.2, 0.02, arms=3)
    h = proportion_effectsize(0.22, 0.2)
    assert plan.alpha_per_comparison == pytest.approx(0.025)
    assert plan.n_per_arm == math.ceil(NormalIndPower().solve_power(h, alpha=0.025, power=0.8, ratio=1))
    assert plan.total == 3 * plan.n_per_arm


def test_mean_plan_uses_the_observed_standard_deviation():
    plan = plan_mean(40.0, 35.0, 2.0)
    assert plan.n_per_arm == math.ceil(NormalIndPower().solve_power(2.0 / 35.0, alpha=0.05, power=0.8, ratio=1))


def test_mde_reachable_is_the_inverse_of_the_sample_size():
    mde = mde_proportion(0.62, 1893)
    assert plan_proportion(0.62, mde).n_per_arm in (1893, 1894)  # ceil of the same equation
    d = mde_mean(35.0, 5000)
    assert plan_mean(40.0, 35.0, d).n_per_arm in (5000, 5001)


def test_power_curve_matches_statsmodels():
    n = np.array([100, 1000, 5000])
    np.testing.assert_allclose(power_at(0.08, n), NormalIndPower().power(0.08, n, 0.05, ratio=1), atol=1e-12)


def test_days_needed_at_the_observed_traffic():
    assert days_needed(1000, 400, 8) == pytest.approx(12.0)
    assert days_needed(1000, 1200, 8) == 0.0
    assert days_needed(1000, 0, 0) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": 1.2, "mde": 0.1}, "baseline"),
        ({"baseline": 0.95, "mde": 0.1}, "MDE"),
        ({"baseline": 0.5, "mde": 0.0}, "MDE"),
    ],
)
def test_impossible_plans_are_refused_with_a_message(kwargs, message):
    with pytest.raises(InputError, match=message):
        plan_proportion(**kwargs)


# --- shadow mode ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("b", "c"), [(30, 52), (4, 11), (0, 0), (200, 180)])
def test_mcnemar_exact_matches_statsmodels(b, c):
    ref = mcnemar([[500, b], [c, 400]], exact=True)
    statistic, p = mcnemar_exact(b, c)
    assert statistic == ref.statistic and p == pytest.approx(ref.pvalue, abs=1e-12)


def test_shadow_result_agreement_accuracy_and_mcnemar():
    counts = ShadowCounts(n=10_000, agree=9_100, labelled=4_000, both_right=3_000, champion_only_right=180,
                          challenger_only_right=260, both_wrong=560)  # fmt: skip
    result = compare_shadow(counts)
    lo, hi = proportion_confint(9_100, 10_000, method="wilson")
    np.testing.assert_allclose(result.agreement_ci, (lo, hi), atol=1e-12)
    assert result.champion_accuracy == pytest.approx(3_180 / 4_000)
    assert result.challenger_accuracy == pytest.approx(3_260 / 4_000)
    ref = mcnemar([[3_000, 180], [260, 560]], exact=True)
    assert result.mcnemar_p_value == pytest.approx(ref.pvalue, abs=1e-12)
    chi2 = mcnemar([[3_000, 180], [260, 560]], exact=False, correction=True)
    assert result.mcnemar_chi2_p_value == pytest.approx(chi2.pvalue, abs=1e-12)
    assert result.verdict == "better" and "Challenger more accurate" in result.verdict_text


def test_shadow_without_labels_reports_agreement_only():
    result = compare_shadow(ShadowCounts(n=100, agree=90))
    assert result.verdict == "no_labels" and result.agreement_rate == 0.9 and result.mcnemar_p_value is None
