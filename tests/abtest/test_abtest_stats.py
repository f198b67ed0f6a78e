"""A/B statistics against their references: scipy, statsmodels and hand computations, to 1e-9."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from workbench.stats.abtest import (
    Moments,
    ProportionStats,
    cap_threshold,
    compare_means,
    compare_proportions,
    compare_ratios,
    mann_whitney_from_ranks,
    non_inferiority,
    ratio_variance,
    score_interval,
    srm_test,
)
from workbench.stats.cuped import compare_cuped, compare_cuped_ratios

RNG = np.random.default_rng(20260101)
CONTROL_VALUES = RNG.lognormal(3.0, 0.9, 800)
VARIANT_VALUES = RNG.lognormal(3.1, 1.0, 650)


# --- sufficient statistics -------------------------------------------------------------------------------


@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=60),
    cut=st.integers(0, 60),
)
@settings(max_examples=150, deadline=None)
def test_moments_of_two_parts_add_up_to_the_moments_of_the_whole(values, cut):
    x = np.asarray(values)
    y = np.sqrt(np.abs(x)) + 3
    cut = min(cut, len(x))
    merged = Moments.from_values(x[:cut], y[:cut]) + Moments.from_values(x[cut:], y[cut:])
    whole = Moments.from_values(x, y)
    assert merged.n == whole.n
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(merged.comoment, whole.comoment, rtol=1e-9, atol=1e-6)


def test_variance_keeps_its_digits_when_the_mean_dwarfs_the_spread():
    # Σx² − (Σx)²/n in float64 loses everything here; merged centred sums (and DuckDB's var_samp) do not.
    rng = np.random.default_rng(1)
    chunks = [1e9 + rng.normal(0, 0.5, 100_000) for _ in range(20)]
    merged = sum((Moments.from_values(c) for c in chunks), Moments.empty())
    whole = np.concatenate(chunks)
    assert merged.variance() == pytest.approx(np.var(whole, ddof=1), rel=1e-9)
    naive = (np.sum(whole**2) - np.sum(whole) ** 2 / len(whole)) / (len(whole) - 1)
    assert abs(naive - np.var(whole, ddof=1)) > 1e-3  # the formula we avoid is visibly wrong


def test_moments_from_engine_style_moments_and_sums_agree_with_raw_values():
    x, y = CONTROL_VALUES, CONTROL_VALUES * 0.3 + RNG.normal(0, 1, len(CONTROL_VALUES))
    raw = Moments.from_values(x, y)
    cov = np.cov(np.vstack([x, y]), ddof=1)
    from_moments = Moments.from_moments(len(x), [x.mean(), y.mean()], cov)
    sums = Moments.from_sums(len(x), [x.sum(), y.sum()], [[x @ x, x @ y], [y @ x, y @ y]])
    for other in (from_moments, sums):
        np.testing.assert_allclose(other.comoment, raw.comoment, rtol=1e-9)
        np.testing.assert_allclose(other.mean, raw.mean, rtol=1e-12)


def test_proportion_stats_add_up():
    assert ProportionStats(10, 3) + ProportionStats(5, 5) == ProportionStats(15, 8)


# --- SRM ---------------------------------------------------------------------------------------------------


def test_srm_is_flagged_on_a_50_8_to_49_2_split_of_200k_units():
    srm = srm_test({"control": 101_600, "variant": 98_400})
    assert srm.p_value == pytest.approx(stats.chisquare([101_600, 98_400]).pvalue, rel=1e-9)
    assert srm.p_value < 0.001 and not srm.ok


def test_srm_is_not_flagged_on_a_fair_split():
    srm = srm_test({"control": 100_150, "variant": 99_850})
    assert srm.ok and srm.p_value == pytest.approx(stats.chisquare([100_150, 99_850]).pvalue, rel=1e-9)


def test_srm_uses_the_planned_split():
    counts = {"a": 9_000, "b": 1_000}
    planned = srm_test(counts, {"a": 0.9, "b": 0.1})
    assert planned.ok and planned.p_value == pytest.approx(1.0)
    assert not srm_test(counts).ok
    reference = stats.chisquare([9_050, 950], [9_000, 1_000]).pvalue
    assert srm_test({"a": 9_050, "b": 950}, {"a": 0.9, "b": 0.1}).p_value == pytest.approx(reference, rel=1e-9)


def test_an_arm_with_zero_units_is_a_sample_ratio_mismatch_not_a_crash():
    srm = srm_test({"control": 5_000, "variant": 0})
    assert not srm.ok and srm.p_value < 1e-100
    empty = srm_test({"control": 0, "variant": 0})
    assert not empty.ok and empty.p_value is None and "no units" in empty.message


# --- proportions -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("xa", "na", "xb", "nb"), [(620, 1000, 650, 1000), (31, 400, 52, 420), (5, 90, 1, 120)])
def test_proportion_pvalue_is_the_pooled_z_test_of_statsmodels(xa, na, xb, nb):
    effect = compare_proportions(ProportionStats(na, xa), ProportionStats(nb, xb))
    z, p = proportions_ztest([xb, xa], [nb, na])
    assert effect.statistic == pytest.approx(z, abs=1e-9) and effect.p_value == pytest.approx(p, abs=1e-9)
    pa, pb = xa / na, xb / nb
    se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    ci = effect.intervals(0.05)
    if ci.method == "wald-unpooled":
        crit = stats.norm.ppf(0.975)
        np.testing.assert_allclose(ci.diff_ci, (pb - pa - crit * se, pb - pa + crit * se), atol=1e-9)
        rel_se = math.sqrt(pb * (1 - pb) / nb / pa**2 + pb**2 * pa * (1 - pa) / na / pa**4)
        np.testing.assert_allclose(
            ci.rel_lift_ci, (pb / pa - 1 - crit * rel_se, pb / pa - 1 + crit * rel_se), atol=1e-9
        )


def _mn_score_interval(xa: int, na: int, xb: int, nb: int, level: float) -> tuple[float, float]:
    """Reference: invert T(δ) with the restricted MLE from Miettinen & Nurminen's cubic (numpy roots, brentq)."""
    from scipy.optimize import brentq

    x1, n1, x2, n2 = xb, nb, xa, na
    total = n1 + n2

    def statistic(d: float) -> float:
        cubic = [total, (n1 + 2 * n2) * d - total - x1 - x2, (n2 * d - total - 2 * x2) * d + x1 + x2, x2 * d * (1 - d)]
        roots = np.roots([cubic[0], cubic[1], cubic[2], cubic[3]])
        p2 = next(r.real for r in roots if abs(r.imag) < 1e-12 and max(0, -d) <= r.real <= min(1, 1 - d))
        p1 = p2 + d
        return (x1 / n1 - x2 / n2 - d) / math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)

    z = stats.norm.isf(level / 2)
    d_hat = xb / nb - xa / na
    return brentq(lambda d: statistic(d) - z, -0.999, d_hat, xtol=1e-15), brentq(
        lambda d: statistic(d) + z, d_hat, 0.999, xtol=1e-15
    )


@pytest.mark.parametrize(
    ("xa", "na", "xb", "nb"),
    [(20, 2000, 7, 200), (45, 2000, 1, 200)],  # pooled rejects while Wald covers 0; and the reverse
)
def test_the_interval_switches_to_the_score_interval_when_wald_and_the_pooled_test_disagree(xa, na, xb, nb):
    effect = compare_proportions(ProportionStats(na, xa), ProportionStats(nb, xb))
    crit = stats.norm.ppf(0.975)
    wald = (effect.diff - crit * effect.se, effect.diff + crit * effect.se)
    assert (wald[0] > 0 or wald[1] < 0) != (effect.p_value <= 0.05)  # the disagreement this test is about
    ci = effect.intervals(0.05)
    np.testing.assert_allclose(ci.diff_ci, _mn_score_interval(xa, na, xb, nb, 0.05), atol=1e-9)
    assert "score" in ci.method and (ci.diff_ci[0] > 0 or ci.diff_ci[1] < 0) == (effect.p_value <= 0.05)


def test_score_interval_statistic_at_zero_is_the_pooled_z_test():
    # statsmodels' confint_proportions_2indep(method="score") is not the reference here: its restricted MLE for
    # δ ≠ 0 uses count0·δ where Miettinen & Nurminen's cubic has n0·δ (0.15.0), so its bounds drift by ~1e-5.
    xa, na, xb, nb = 620, 1000, 655, 1000
    lo, hi = score_interval(xa, na, xb, nb, 0.05)
    p = proportions_ztest([xb, xa], [nb, na])[1]
    assert (lo > 0) == (p <= 0.05)
    np.testing.assert_allclose((lo, hi), _mn_score_interval(xa, na, xb, nb, 0.05), atol=1e-9)
    level = p  # at the level equal to the pooled p-value the interval's lower end is 0
    assert score_interval(xa, na, xb, nb, level)[0] == pytest.approx(0.0, abs=1e-9)


def _likelihood_score_interval(xa: int, na: int, xb: int, nb: int, level: float) -> tuple[float, float]:
    """Reference from the likelihood itself: for each δ the restricted MLE p̃_a maximises
    x_a·log p + (n_a − x_a)·log(1 − p) + x_b·log(p + δ) + (n_b − x_b)·log(1 − p − δ) numerically (bounded
    Brent, no cubic), T(δ) = (p̂_b − p̂_a − δ)/√(p̃_b(1 − p̃_b)/n_b + p̃_a(1 − p̃_a)/n_a), and the ends are the
    roots of T(δ) = ±z found with brentq.
    """
    from scipy.optimize import brentq, minimize_scalar

    def restricted(d: float) -> float:
        lo, hi = max(0.0, -d), min(1.0, 1.0 - d)

        def minus_loglik(pa: float) -> float:
            pb = pa + d
            return -(xa * math.log(pa) + (na - xa) * math.log1p(-pa) + xb * math.log(pb) + (nb - xb) * math.log1p(-pb))

        eps = 1e-12
        return minimize_scalar(minus_loglik, bounds=(lo + eps, hi - eps), method="bounded", options={"xatol": 1e-14}).x

    def statistic(d: float) -> float:
        pa = restricted(d)
        pb = pa + d
        return (xb / nb - xa / na - d) / math.sqrt(pb * (1 - pb) / nb + pa * (1 - pa) / na)

    z = stats.norm.isf(level / 2)
    d_hat = xb / nb - xa / na
    lower = brentq(lambda d: statistic(d) - z, -0.999, d_hat, xtol=1e-14)
    upper = brentq(lambda d: statistic(d) + z, d_hat, 0.999, xtol=1e-14)
    return lower, upper


@pytest.mark.parametrize(
    ("xa", "na", "xb", "nb"),
    [(20, 2000, 7, 200), (45, 2000, 1, 200), (300, 5000, 30, 300), (10, 100, 400, 1000), (620, 1000, 90, 120)],
)
def test_score_interval_ends_are_where_the_likelihood_score_statistic_equals_the_normal_quantile(xa, na, xb, nb):
    # statsmodels' confint_proportions_2indep(method="score") is not the reference: with unbalanced arms its
    # restricted MLE is off (statsmodels issue 10269): its bounds differ by 1.6e-4 to 5.1e-3 on these cases and it
    # raises on (45, 2000, 1, 200)
    for level in (0.05, 0.01):
        lo, hi = score_interval(xa, na, xb, nb, level)
        np.testing.assert_allclose((lo, hi), _likelihood_score_interval(xa, na, xb, nb, level), atol=1e-8)


@given(
    na=st.integers(20, 3000),
    nb=st.integers(20, 3000),
    ra=st.floats(0.01, 0.99),
    rb=st.floats(0.01, 0.99),
    level=st.sampled_from([0.05, 0.025, 0.0125, 0.01]),
)
@settings(max_examples=300, deadline=None)
def test_intervals_never_contradict_the_test(na, nb, ra, rb, level):
    effect = compare_proportions(ProportionStats(na, round(ra * na)), ProportionStats(nb, round(rb * nb)))
    if not effect.defined:
        return
    ci = effect.intervals(level)
    significant = effect.p_value <= level
    assert (ci.diff_ci[0] > 0 or ci.diff_ci[1] < 0) == significant
    if ci.rel_lift_ci is not None:
        assert (ci.rel_lift_ci[0] > 0 or ci.rel_lift_ci[1] < 0) == significant


@pytest.mark.parametrize(
    ("control", "variant", "message"),
    [
        (ProportionStats(0, 0), ProportionStats(100, 30), "no observations"),
        (ProportionStats(100, 0), ProportionStats(100, 0), "no variation"),
        (ProportionStats(100, 100), ProportionStats(80, 80), "no variation"),
    ],
)
def test_degenerate_proportions_give_a_message_and_no_pvalue(control, variant, message):
    effect = compare_proportions(control, variant)
    assert not effect.defined and message in effect.message
    assert effect.intervals(0.05).diff_ci is None


def test_a_zero_control_rate_leaves_the_relative_lift_undefined_but_tests_the_difference():
    effect = compare_proportions(ProportionStats(200, 0), ProportionStats(200, 9))
    assert effect.defined and effect.rel_lift is None and "control rate is 0%" in effect.message


# --- means -------------------------------------------------------------------------------------------------


def test_welch_matches_scipy_ttest_and_its_interval():
    effect = compare_means(Moments.from_values(CONTROL_VALUES), Moments.from_values(VARIANT_VALUES))
    ref = stats.ttest_ind(VARIANT_VALUES, CONTROL_VALUES, equal_var=False)
    assert effect.statistic == pytest.approx(ref.statistic, abs=1e-9)
    assert effect.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert effect.df == pytest.approx(ref.df, rel=1e-9)
    low, high = ref.confidence_interval(0.95)
    np.testing.assert_allclose(effect.intervals(0.05).diff_ci, (low, high), atol=1e-9)


def test_welch_from_typed_in_summaries_matches_scipy_from_stats():
    ref = stats.ttest_ind_from_stats(10.4, 3.1, 250, 10.0, 2.7, 240, equal_var=False)
    effect = compare_means(Moments.from_summary(240, 10.0, 2.7), Moments.from_summary(250, 10.4, 3.1))
    assert effect.p_value == pytest.approx(ref.pvalue, abs=1e-9)


@pytest.mark.parametrize(
    ("control", "variant", "message"),
    [
        (Moments.from_values([3.0]), Moments.from_values([1.0, 2.0, 4.0]), "1 observation"),
        (Moments.from_values([2.0, 2.0, 2.0]), Moments.from_values([5.0, 5.0]), "no variance"),
        (Moments.empty(), Moments.from_values([1.0, 2.0]), "0 observation"),
    ],
)
def test_degenerate_means_give_a_message_and_no_pvalue(control, variant, message):
    effect = compare_means(control, variant)
    assert not effect.defined and message in effect.message


def test_mann_whitney_from_engine_rank_sums_matches_scipy_asymptotic():
    a = np.round(CONTROL_VALUES, 0)  # rounding creates ties: the tie correction matters
    b = np.round(VARIANT_VALUES, 0)
    pooled = np.concatenate([a, b])
    ranks = stats.rankdata(pooled)
    _, tie_counts = np.unique(pooled, return_counts=True)
    result = mann_whitney_from_ranks(len(a), len(b), ranks[len(a) :].sum(), float((tie_counts**3 - tie_counts).sum()))
    ref = stats.mannwhitneyu(b, a, method="asymptotic")
    assert result.u == pytest.approx(ref.statistic, abs=1e-9)
    assert result.p_value == pytest.approx(ref.pvalue, abs=1e-9)


def test_capping_threshold_is_the_linear_quantile_of_all_or_nonzero_values():
    values = np.concatenate([np.zeros(900), RNG.lognormal(4, 1, 100)])
    assert cap_threshold(values, 0.99) == pytest.approx(np.quantile(values, 0.99))
    assert cap_threshold(values, 0.99, nonzero_only=True) == pytest.approx(np.quantile(values[values > 0], 0.99))
    assert cap_threshold(values, 0.5) == 0.0  # why sparse metrics need the non-zero option


# --- ratios and CUPED --------------------------------------------------------------------------------------


def _units(rng: np.random.Generator, n: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
    sessions = rng.poisson(3, n) + 1
    clicks = rng.binomial(sessions, rate)
    return clicks.astype(float), sessions.astype(float)


def test_ratio_delta_method_equals_the_variance_of_the_linearised_units():
    rng = np.random.default_rng(3)
    (ya, xa), (yb, xb) = _units(rng, 700, 0.2), _units(rng, 650, 0.23)
    effect = compare_ratios(Moments.from_values(ya, xa), Moments.from_values(yb, xb))
    for y, x, var in ((ya, xa, effect.extra["var_control"]), (yb, xb, effect.extra["var_variant"])):
        r = y.sum() / x.sum()
        linearised = (y - r * x) / x.mean()
        assert var == pytest.approx(np.var(linearised, ddof=1) / len(y), rel=1e-9)
    assert effect.diff == pytest.approx(yb.sum() / xb.sum() - ya.sum() / xa.sum(), abs=1e-12)
    z = effect.diff / math.sqrt(effect.extra["var_control"] + effect.extra["var_variant"])
    assert effect.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), abs=1e-12)


def test_ratio_variance_reduces_to_the_variance_of_the_mean_when_every_denominator_is_one():
    y = CONTROL_VALUES
    m = Moments.from_values(y, np.ones_like(y))
    assert ratio_variance(m) == pytest.approx(np.var(y, ddof=1) / len(y), rel=1e-9)


def _pre_post(rng: np.random.Generator, n: int, lift: float) -> tuple[np.ndarray, np.ndarray]:
    pre = rng.gamma(2.0, 5.0, n)
    post = 0.8 * pre + rng.normal(2.0 + lift, 3.0, n)
    return post, pre


def test_cuped_matches_a_hand_computation_and_welch_on_adjusted_values():
    rng = np.random.default_rng(5)
    (ya, xa), (yb, xb) = _pre_post(rng, 900, 0.0), _pre_post(rng, 950, 0.6)
    effect = compare_cuped(Moments.from_values(ya, xa), Moments.from_values(yb, xb))
    y, x = np.concatenate([ya, yb]), np.concatenate([xa, xb])
    theta = np.cov(y, x, ddof=1)[0, 1] / np.var(x, ddof=1)
    assert effect.extra["theta"] == pytest.approx(theta, rel=1e-9)
    ref = stats.ttest_ind(yb - theta * xb, ya - theta * xa, equal_var=False)
    assert effect.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    adjusted_var = np.var(ya - theta * xa, ddof=1) / len(ya) + np.var(yb - theta * xb, ddof=1) / len(yb)
    plain_var = np.var(ya, ddof=1) / len(ya) + np.var(yb, ddof=1) / len(yb)
    assert effect.extra["variance_reduction"] == pytest.approx(1 - adjusted_var / plain_var, rel=1e-9)
    assert effect.extra["variance_reduction"] > 0.5  # pre-period explains most of the variance here
    assert effect.diff == pytest.approx((yb.mean() - ya.mean()) - theta * (xb.mean() - xa.mean()), abs=1e-9)


def test_cuped_for_ratios_matches_a_hand_computation_on_linearised_units():
    rng = np.random.default_rng(9)
    arms = []
    for rate in (0.20, 0.22):
        propensity = rng.beta(2, 8, 1500)
        pre_sessions = rng.poisson(4, 1500) + 1
        pre_clicks = rng.binomial(pre_sessions, propensity).astype(float)
        sessions = (rng.poisson(4, 1500) + 1).astype(float)
        clicks = rng.binomial(sessions.astype(int), np.clip(propensity * rate / 0.2, 0, 1)).astype(float)
        arms.append((clicks, sessions, pre_clicks))
    effect = compare_cuped_ratios(*(Moments.from_values(*arm) for arm in arms))
    lin, zs = [], []
    for y, n, z in arms:
        r = y.sum() / n.sum()
        lin.append((y - r * n) / n.mean())
        zs.append(z)
    within = sum(np.sum((li - li.mean()) * (z - z.mean())) for li, z in zip(lin, zs, strict=True))
    z_all = np.concatenate(zs)
    theta = within / np.sum((z_all - z_all.mean()) ** 2)
    assert effect.extra["theta"] == pytest.approx(theta, rel=1e-9)
    var = sum(np.var(li - theta * z, ddof=1) / len(z) for li, z in zip(lin, zs, strict=True))
    plain = compare_ratios(Moments.from_values(*arms[0][:2]), Moments.from_values(*arms[1][:2]))
    assert effect.se == pytest.approx(math.sqrt(var), rel=1e-9)
    assert effect.extra["variance_reduction"] == pytest.approx(1 - var / plain.se**2, rel=1e-9)
    assert effect.extra["variance_reduction"] > 0.05


# --- guardrails --------------------------------------------------------------------------------------------


def test_non_inferiority_is_the_one_sided_welch_test_against_the_margin():
    a, b = CONTROL_VALUES, CONTROL_VALUES[:600] * 0.99
    effect = compare_means(Moments.from_values(a), Moments.from_values(b))
    margin = 0.05 * a.mean()
    result = non_inferiority(effect, margin, 0.05, higher_is_better=True)
    ref = stats.ttest_ind(b + margin, a, equal_var=False, alternative="greater")
    assert result.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert result.non_inferior == (ref.pvalue <= 0.05)
    worse = non_inferiority(effect, margin, 0.05, higher_is_better=False)
    ref_lower = stats.ttest_ind(b - margin, a, equal_var=False, alternative="less")
    assert worse.p_value == pytest.approx(ref_lower.pvalue, abs=1e-9)
