"""Always-valid confidence sequences under daily peeking, and the Bayesian view, against references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from workbench.stats.abtest import ProportionStats
from workbench.stats.bayes import beta_binomial, normal_posterior
from workbench.stats.sequential import always_valid_p, cs_halfwidth, sequential_rho


def test_rho_and_halfwidth_follow_waudby_smith_eq_161_and_growthbook():
    alpha, n_star = 0.05, 5000
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n_star)
    assert sequential_rho(alpha, n_star) == pytest.approx(rho, rel=1e-12)
    se, n = 0.01, 12_000
    s2 = se**2 * n
    expected = math.sqrt(s2) * math.sqrt(
        2 * (n * rho**2 + 1) * math.log(math.sqrt(n * rho**2 + 1) / alpha) / (n * rho) ** 2
    )
    assert float(cs_halfwidth(se, n, alpha, n_star)) == pytest.approx(expected, rel=1e-12)
    assert float(cs_halfwidth(se, n, alpha, n_star)) > stats.norm.ppf(0.975) * se  # the price of peeking


@given(diff=st.floats(-0.05, 0.05), se=st.floats(0.001, 0.05), n=st.integers(100, 10**7))
@settings(max_examples=200, deadline=None)
def test_always_valid_p_is_below_alpha_exactly_when_the_sequence_excludes_zero(diff, se, n):
    half = float(cs_halfwidth(se, n, 0.05))
    p = float(always_valid_p(diff, se, n, 0.05))
    if abs(abs(diff) - half) > 1e-9 * half:  # away from the boundary's last digit
        assert (p < 0.05) == (abs(diff) > half)


def _aa_simulation(n_tests: int, days: int, per_day: int, rate: float, seed: int) -> tuple[float, float, float]:
    """False-positive rates over A/A tests looked at daily: naive z-test, always-valid sequence, final look only."""
    rng = np.random.default_rng(seed)
    successes = rng.binomial(per_day, rate, size=(n_tests, days, 2)).cumsum(axis=1)
    n = per_day * np.arange(1, days + 1)[None, :]
    pa, pb = successes[..., 0] / n, successes[..., 1] / n
    se = np.sqrt(pa * (1 - pa) / n + pb * (1 - pb) / n)
    diff = pb - pa
    naive = (np.abs(diff / se) > stats.norm.ppf(0.975)).any(axis=1).mean()
    sequential = (np.abs(diff) > cs_halfwidth(se, 2 * n, 0.05)).any(axis=1).mean()
    final_only = (np.abs(diff[:, -1] / se[:, -1]) > stats.norm.ppf(0.975)).mean()
    return float(naive), float(sequential), float(final_only)


def test_always_valid_sequence_keeps_the_false_positive_rate_under_daily_peeking():
    # 500 seeded A/A tests, 28 daily looks: peeking at the fixed-horizon z-test inflates false positives,
    # the confidence sequence (N* = 5000) keeps them at or below 5%.
    naive, sequential, final_only = _aa_simulation(500, 28, 400, 0.2, seed=11)
    assert sequential <= 0.05
    assert naive > 0.05
    assert naive > 2 * final_only  # a single planned look is fine; repeated looks are not


# --- Bayesian view ------------------------------------------------------------------------------------------


def _prob_beat_by_quadrature(xa: int, na: int, xb: int, nb: int) -> float:
    a, b = stats.beta(1 + xa, 1 + na - xa), stats.beta(1 + xb, 1 + nb - xb)
    lo, hi = min(a.ppf(1e-12), b.ppf(1e-12)), max(a.ppf(1 - 1e-12), b.ppf(1 - 1e-12))
    value, _ = integrate.quad(lambda x: a.pdf(x) * b.sf(x), lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200)
    return value


@pytest.mark.parametrize(("xa", "na", "xb", "nb"), [(62, 100, 65, 100), (1240, 2000, 1302, 2000), (3, 40, 0, 35)])
def test_probability_to_beat_control_is_exact_for_beta_posteriors(xa, na, xb, nb):
    result = beta_binomial(ProportionStats(na, xa), ProportionStats(nb, xb))
    assert result.prob_beat_control == pytest.approx(_prob_beat_by_quadrature(xa, na, xb, nb), abs=1e-9)
    assert result.method.startswith("exact")


def test_expected_loss_matches_seeded_draws():
    control, variant = ProportionStats(2000, 1240), ProportionStats(2000, 1290)
    result = beta_binomial(control, variant)
    rng = np.random.default_rng(0)
    pa, pb = rng.beta(1241, 761, 4_000_000), rng.beta(1291, 711, 4_000_000)
    loss_ship, loss_keep = np.maximum(pa - pb, 0), np.maximum(pb - pa, 0)
    for ours, draws in ((result.expected_loss_variant, loss_ship), (result.expected_loss_control, loss_keep)):
        assert ours == pytest.approx(draws.mean(), abs=4 * draws.std() / 2000)


def test_lower_is_better_swaps_the_direction():
    control, variant = ProportionStats(1000, 80), ProportionStats(1000, 60)  # fewer corrections is better
    higher = beta_binomial(control, variant)
    lower = beta_binomial(control, variant, higher_is_better=False)
    assert lower.prob_beat_control == pytest.approx(1 - higher.prob_beat_control, abs=1e-12)
    assert lower.prob_beat_control > 0.9


def test_normal_posterior_probability_and_loss_match_integration():
    diff, se = 0.8, 0.5
    result = normal_posterior(diff, se)
    posterior = stats.norm(diff, se)
    assert result.prob_beat_control == pytest.approx(posterior.sf(0), abs=1e-12)
    loss, _ = integrate.quad(lambda d: -d * posterior.pdf(d), -np.inf, 0, epsabs=1e-13)
    assert result.expected_loss_variant == pytest.approx(loss, abs=1e-10)


def test_probability_to_beat_control_is_not_one_minus_p():
    # two-sided p = 0.05 under a flat prior is a 97.5% probability to beat control, not 95%
    z = stats.norm.isf(0.025)
    assert normal_posterior(z, 1.0).prob_beat_control == pytest.approx(0.975, abs=1e-12)


def test_degenerate_posteriors_say_so_instead_of_nan():
    assert normal_posterior(0.1, 0.0).prob_beat_control is None
    assert beta_binomial(ProportionStats(0, 0), ProportionStats(10, 3)).prob_beat_control is None
