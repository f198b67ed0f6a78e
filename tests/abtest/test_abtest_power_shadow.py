"""Power and sample size against statsmodels; shadow-mode McNemar and agreement against statsmodels."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize

from tests.conftest import ROOT
from workbench.core.errors import InputError
from workbench.stats.power import (
    days_needed,
    detectable_effect_size,
    mde_mean,
    mde_proportion,
    plan_mean,
    plan_proportion,
    power_at,
    required_n,
)
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


def _closed_form_n(effect: float, alpha: float, power: float) -> float:
    """Two-sided normal approximation, both tails: solve Φ(√(n/2)e − z) + Φ(−√(n/2)e − z) = power by hand.

    Starts from the one-tailed closed form n₀ = 2(z_{α/2} + z_β)²/e² and applies Newton's method to the
    two-tailed equation (an independent route from the solver's bracketed brentq).
    """
    z = stats.norm.isf(alpha / 2)
    n = 2 * ((z + stats.norm.isf(1 - power)) / effect) ** 2
    for _ in range(50):
        r = math.sqrt(n / 2) * effect
        f = stats.norm.cdf(r - z) + stats.norm.cdf(-r - z) - power
        slope = (stats.norm.pdf(r - z) - stats.norm.pdf(-r - z)) * effect / (2 * math.sqrt(2 * n))
        n -= f / slope
    return n


@pytest.mark.parametrize(
    ("effect", "alpha", "power"),
    [(0.05, 0.05, 0.8), (0.5, 0.01, 0.9), (2.5, 0.05, 0.8), (3.5, 0.05, 0.8), (5, 0.05, 0.8), (1e-6, 0.05, 0.8),
     (0.1, 0.05, 0.999999), (8.0, 0.1, 0.5)],
)  # fmt: skip
def test_required_n_solves_the_two_sided_normal_equation_also_where_statsmodels_returns_nan(effect, alpha, power):
    n = required_n(effect, alpha, power)
    assert n == pytest.approx(_closed_form_n(effect, alpha, power), rel=1e-9)
    assert float(power_at(effect, n, alpha)) == pytest.approx(power, abs=1e-9)


def test_a_large_standardised_effect_gets_a_tiny_plan_with_a_note_not_nan():
    # issue 18: statsmodels' solve_power returns NaN for d above ~3 and `workbench power` crashed on int(NaN)
    plan = plan_mean(100, 1, 0.05, relative=True)  # d = 5
    assert plan.n_per_arm == 2 and plan.total == 4  # the closed form asks for 0.63 units per arm; 2 is the floor
    assert "tiny" in plan.note and "0.63" in plan.note
    assert plan_proportion(0.999, -0.998).n_per_arm == 2  # Cohen's h ≈ 3.0
    assert plan_proportion(0.62, 0.03).note is None
    assert plan_proportion(0.5, 0.45).n_per_arm == math.ceil(
        _closed_form_n(proportion_effectsize(0.95, 0.5), 0.05, 0.8)
    )
    assert plan_proportion(0.5, 0.45).note is not None  # h = 1.12: 13 units per arm, below 30


def test_detectable_effect_matches_the_closed_form_also_for_huge_samples():
    # statsmodels' solver stops early at large n (1.273e-4 at n = 1e9, 1.6% off); the equation's root is 1.2529e-4,
    # the one-tailed closed form's (z_{α/2} + z_β)·√(2/n) less the second tail's share (Φ(−4.8) ≈ 1e-6, relative)
    z = stats.norm.isf(0.025) + stats.norm.isf(0.2)
    for n in (1e9, 1e15):
        assert detectable_effect_size(n) == pytest.approx(z * math.sqrt(2 / n), rel=3e-6)
        assert float(power_at(detectable_effect_size(n), n)) == pytest.approx(0.8, abs=1e-9)
    assert detectable_effect_size(100) == pytest.approx(NormalIndPower().solve_power(None, 100, 0.05, 0.8), rel=1e-6)
    assert detectable_effect_size(1) == math.inf and detectable_effect_size(float("nan")) == math.inf
    assert detectable_effect_size(100, alpha=0.5, power=0.3) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": 0.5, "mde": 0.1, "alpha": 0.9, "power": 0.5}, "must exceed the significance level"),
        ({"baseline": 0.5, "mde": 1e-300}, "too small"),
    ],
)
def test_plans_without_an_answer_are_one_line_input_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        plan_proportion(**kwargs)
    with pytest.raises(InputError, match="finite"):
        plan_mean(1, 1e-300, 1e300)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", "power", *args], cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip


def test_power_cli_answers_a_large_effect_with_exit_0_and_says_it_is_tiny():
    out = _cli("--baseline", "100", "--std", "1", "--mde", "0.05", "--relative")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "tiny" in out.stdout and out.stdout.startswith("2 units per arm")
    out = _cli("--baseline", "100", "--std", "1", "--mde", "0.05", "--relative", "--json")
    document = json.loads(out.stdout)
    assert out.returncode == 0 and document["n_per_arm"] == 2 and "tiny" in document["note"]
    assert document["n_per_arm"] == max(math.ceil(_closed_form_n(5.0, 0.05, 0.8)), 2)


@pytest.mark.parametrize(
    "args",
    [
        ("--baseline", "0.5", "--mde", "0.1", "--alpha", "0.9", "--power", "0.5"),
        ("--baseline", "0.5", "--mde", "1e-300"),
        ("--baseline", "1", "--std", "1e-300", "--mde", "1e300"),
        ("--baseline", "1", "--std", "1", "--mde", "nan"),
    ],
)
def test_power_cli_without_an_answer_exits_2_with_one_line(args):
    out = _cli(*args)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


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
