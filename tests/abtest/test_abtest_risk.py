"""Risk (the expected loss of choosing the variant) beside the chance to beat control: against numeric integration,
Monte Carlo and a hand computation, and where the page, the text report and the verdict sentence show it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from workbench.abtest.analyse import analyse_summary
from workbench.abtest.cli import format_result
from workbench.abtest.request import ABTestRequest
from workbench.abtest.tables import results_table, shown_columns
from workbench.stats.abtest import ProportionStats
from workbench.stats.bayes import beta_binomial, normal_posterior


def _beta_loss_by_integration(aa: float, ba: float, ab: float, bb: float) -> float:
    """E[max(p_A − p_B, 0)] = ∫ f_B(b) · E[(p_A − b)⁺] db with E[(p_A − b)⁺] = m_A(1 − I_b(α_A + 1, β_A)) −
    b(1 − I_b(α_A, β_A)) (I the regularised incomplete beta), integrated over b by adaptive quadrature."""
    mean_a = aa / (aa + ba)

    def inner(b: float) -> float:
        tail = mean_a * special.betaincc(aa + 1, ba, b) - b * special.betaincc(aa, ba, b)
        return stats.beta.pdf(b, ab, bb) * tail

    lo, hi = stats.beta.ppf([1e-12, 1 - 1e-12], ab, bb)
    value, _err = integrate.quad(inner, lo, hi, epsabs=1e-13, epsrel=1e-10, limit=400)
    return value


@pytest.mark.parametrize(("control", "variant"), [((1000, 300), (1000, 330)), ((400, 50), (380, 41)),
                                                   ((5000, 3100), (5000, 3250)), ((30, 3), (25, 9))])  # fmt: skip
def test_beta_binomial_risk_equals_numeric_integration(control: tuple[int, int], variant: tuple[int, int]) -> None:
    a, b = ProportionStats(*control), ProportionStats(*variant)
    result = beta_binomial(a, b)
    aa, ba = 1 + a.successes, 1 + a.n - a.successes
    ab, bb = 1 + b.successes, 1 + b.n - b.successes
    assert result.expected_loss_variant == pytest.approx(_beta_loss_by_integration(aa, ba, ab, bb), abs=1e-9)
    assert result.expected_loss_control == pytest.approx(_beta_loss_by_integration(ab, bb, aa, ba), abs=1e-9)


def test_beta_binomial_risk_and_chance_agree_with_monte_carlo() -> None:
    a, b = ProportionStats(2000, 610), ProportionStats(2000, 650)
    result = beta_binomial(a, b)
    rng = np.random.default_rng(20)
    pa, pb = rng.beta(611, 1391, 2_000_000), rng.beta(651, 1351, 2_000_000)
    loss = np.maximum(pa - pb, 0)
    assert result.expected_loss_variant == pytest.approx(loss.mean(), abs=5 * loss.std() / math.sqrt(len(loss)))
    assert result.prob_beat_control == pytest.approx(np.mean(pb > pa), abs=0.002)


def test_beta_binomial_risk_swaps_when_lower_is_better() -> None:
    a, b = ProportionStats(800, 120), ProportionStats(800, 100)
    up, down = beta_binomial(a, b, True), beta_binomial(a, b, False)
    assert down.expected_loss_variant == pytest.approx(up.expected_loss_control, abs=1e-15)
    assert down.prob_beat_control == pytest.approx(1 - up.prob_beat_control, abs=1e-15)


def test_normal_risk_by_hand_at_no_difference() -> None:
    # Δ̂ = 0: the loss of shipping is E[max(−Δ, 0)] for Δ ~ N(0, SE²), SE·φ(0) = SE/√(2π); the chance is ½
    result = normal_posterior(0.0, 2.0)
    assert result.expected_loss_variant == pytest.approx(2.0 / math.sqrt(2 * math.pi), rel=1e-14)
    assert result.prob_beat_control == pytest.approx(0.5)


@pytest.mark.parametrize(("diff", "se"), [(0.4, 1.3), (-2.0, 0.7), (5.0, 1.0), (0.01, 0.002)])
def test_normal_risk_equals_numeric_integration(diff: float, se: float) -> None:
    density = stats.norm(diff, se).pdf
    ship, _ = integrate.quad(lambda x: -x * density(x), diff - 40 * se, 0.0, epsabs=1e-14, epsrel=1e-12, limit=200)
    keep, _ = integrate.quad(lambda x: x * density(x), 0.0, diff + 40 * se, epsabs=1e-14, epsrel=1e-12, limit=200)
    result = normal_posterior(diff, se)
    assert result.expected_loss_variant == pytest.approx(max(ship, 0.0), abs=1e-10)
    assert result.expected_loss_control == pytest.approx(max(keep, 0.0), abs=1e-10)


ROWS = ({"arm": "control", "n": 10_000, "successes": 3_000}, {"arm": "variant", "n": 10_000, "successes": 3_150})


def test_the_verdict_sentence_names_the_chance_to_win_and_the_risk_in_points() -> None:
    result = analyse_summary([dict(r) for r in ROWS], ABTestRequest(mode="summary"))
    c = result.comparisons[0]
    # hand: Beta(3001, 7001) vs Beta(3151, 6851); the loss by integration, shown in points with two decimals
    loss = _beta_loss_by_integration(3001, 7001, 3151, 6851)
    assert c.expected_loss == pytest.approx(loss, abs=1e-9) and loss * 100 < 0.005
    assert result.verdict == "ship"
    assert f", {c.prob_beat_control:.1%} chance to beat control, risk < 0.01 pts" in result.verdict_text
    assert "risk < 0.01 pts" in format_result(result)


def test_the_risk_is_a_column_of_the_results_table_beside_the_chance_to_win() -> None:
    rows = [{"arm": "control", "n": 500, "mean": 52.0, "std": 30.0}, {"arm": "variant", "n": 500, "mean": 53.1,
                                                                       "std": 31.0}]  # fmt: skip
    result = analyse_summary(rows, ABTestRequest(mode="summary"))
    c = result.comparisons[0]
    table = results_table(result)
    shown = shown_columns(table)
    assert shown.index("risk") == shown.index("P(beat control)") + 1
    se = math.sqrt(30.0**2 / 500 + 31.0**2 / 500)
    d = 1.1 / se  # hand: SE·φ(d) − Δ̂·Φ(−d)
    assert c.expected_loss == pytest.approx(se * stats.norm.pdf(d) - 1.1 * stats.norm.cdf(-d), rel=1e-9)
    assert table["risk"].iloc[0] == f"{c.expected_loss:.2f}"
    assert f"chance to beat control, risk {c.expected_loss:.2f}" in result.verdict_text
