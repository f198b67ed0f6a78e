"""Cochran's Q, I², τ² and the per-segment adjustment against statsmodels and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests

from workbench.stats.heterogeneity import adjust_segments, cochran_q

TOL = 1e-9


def _reference(y: np.ndarray, se: np.ndarray) -> dict[str, float]:
    res = combine_effects(y, se**2, method_re="chi2")  # I² and τ² as the literature truncates them, at 0
    return {"q": float(res.q), "p": float(res.test_homogeneity().pvalue), "i2": max(0.0, float(res.i2)),
            "tau2": max(0.0, float(res.tau2)), "pooled": float(res.mean_effect_fe),
            "pooled_se": float(res.sd_eff_w_fe)}  # fmt: skip


def _assert_matches(y: np.ndarray, se: np.ndarray) -> None:
    h = cochran_q(y, se)
    ref = _reference(y, se)
    assert h.k == len(y) and h.df == len(y) - 1
    for name, value in (("q", h.q), ("tau2", h.tau2), ("pooled", h.pooled), ("pooled_se", h.pooled_se)):
        assert value == pytest.approx(ref[name], rel=TOL, abs=TOL), name
    # For equal estimates statsmodels' Q is rounding noise (±4e-16, where ours is 0): its p moves by 1e-8
    # (P(χ²₁ ≥ Q) ≈ 1 − √(2Q/π) near 0) and its I² = (Q − df)/Q by ±1e14. There p is held to χ² at the Q just
    # matched and I² to 0 (Q < df), everywhere else to statsmodels' p and I².
    tiny = abs(ref["q"]) < 1e-9
    assert h.p_value == pytest.approx(stats.chi2.sf(h.q, h.df) if tiny else ref["p"], rel=TOL, abs=TOL), "p"
    assert h.i2 == pytest.approx(0.0 if tiny else ref["i2"], rel=TOL, abs=TOL), "i2"


def test_cochran_q_equals_statsmodels_combine_effects_on_four_segments() -> None:
    y = np.array([0.031, 0.052, -0.004, 0.027])
    se = np.array([0.011, 0.018, 0.015, 0.030])
    _assert_matches(y, se)
    assert cochran_q(y, se).p_value == pytest.approx(stats.chi2.sf(cochran_q(y, se).q, 3), rel=TOL)


def test_cochran_q_equals_statsmodels_when_the_segments_clearly_differ() -> None:
    y, se = np.array([0.20, 0.0, 0.01]), np.array([0.02, 0.02, 0.03])
    _assert_matches(y, se)
    h = cochran_q(y, se)
    assert h.p_value < 1e-6 and h.i2 > 0.9 and h.tau2 > 0


def test_cochran_q_by_hand_for_two_segments() -> None:
    # y = (0, 1), SE = (1, 1): weights 1 and 1, pooled 0.5, Q = 0.25 + 0.25, df 1, I² = max(0, (0.5 − 1)/0.5) = 0
    h = cochran_q([0.0, 1.0], [1.0, 1.0])
    assert h.pooled == pytest.approx(0.5) and h.q == pytest.approx(0.5) and h.df == 1
    assert h.p_value == pytest.approx(stats.chi2.sf(0.5, 1)) and h.i2 == 0.0 and h.tau2 == 0.0
    assert h.pooled_se == pytest.approx(1 / math.sqrt(2))


def test_cochran_q_is_undefined_below_two_testable_segments() -> None:
    h = cochran_q([0.1, 0.2, 0.3], [0.05, math.nan, 0.0])  # only the first has a usable SE
    assert h.k == 1 and not h.defined and h.q is None and h.i2 is None


def test_identical_estimates_give_q_zero_and_no_heterogeneity() -> None:
    h = cochran_q([0.03] * 5, [0.01, 0.02, 0.01, 0.05, 0.02])
    assert h.q == pytest.approx(0.0, abs=1e-15) and h.p_value == pytest.approx(1.0) and h.i2 == 0.0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-5, 5), st.floats(0.01, 3)), min_size=2, max_size=12),
    st.randoms(use_true_random=False),
)
def test_cochran_q_matches_statsmodels_bounded_and_order_free(pairs: list[tuple[float, float]], rnd) -> None:  # type: ignore[no-untyped-def]
    y, se = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    _assert_matches(y, se)
    h = cochran_q(y, se)
    assert h.q >= 0 and 0 <= h.p_value <= 1 and 0 <= h.i2 < 1 and h.tau2 >= 0
    order = list(range(len(pairs)))
    rnd.shuffle(order)
    shuffled = cochran_q(y[order], se[order])
    assert shuffled.q == pytest.approx(h.q, rel=1e-12, abs=1e-12)
    assert shuffled.pooled == pytest.approx(h.pooled, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("method", "reference"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_segment_adjustment_equals_statsmodels_and_skips_untested_segments(method: str, reference: str) -> None:
    p = [0.001, math.nan, 0.04, 0.2, math.nan, 0.011]
    family = adjust_segments(p, 0.05, method)  # type: ignore[arg-type]
    tested = [x for x in p if not math.isnan(x)]
    expected = multipletests(tested, method=reference)[1]
    got = [x for x in family.p_adjusted if not math.isnan(x)]
    assert got == pytest.approx(list(expected), rel=1e-12) and family.size == 4
    assert math.isnan(family.p_adjusted[1]) and math.isnan(family.levels[4])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=15), st.sampled_from(["holm", "bh"]))
def test_a_segment_is_significant_exactly_when_its_raw_p_is_below_its_level(p: list[float], method: str) -> None:
    family = adjust_segments(p, 0.05, method)  # type: ignore[arg-type]
    for raw, adjusted, level in zip(p, family.p_adjusted, family.levels, strict=True):
        assert adjusted >= raw - 1e-15
        assert (adjusted <= 0.05) == (raw <= level + 1e-15)
