"""The KS tail: our Birnbaum–Tingey sum against scipy's ``smirnov`` / ``kstwo.sf`` / ``ks_2samp``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from workbench.stats.drift import ks_exact
from workbench.stats.smirnov import SMIRNOV_MAX_COMPUTE_N, SUM_MIN_N, kstwo_sf, smirnov_sf, stirling_error


def test_stirling_error_matches_log_gamma():
    """Up to 1000 log-gamma's difference is exact to ~1e-12 (it cancels digits beyond); far out the series
    is 1/(12k) − 1/(360k³) to double precision."""
    k = np.array([1.0, 2.0, 7.0, 15.0, 16.0, 17.0, 100.0, 1000.0])
    expected = special.gammaln(k + 1) - (k + 0.5) * np.log(k) + k - 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(stirling_error(k), expected, rtol=1e-9, atol=1e-12)
    far = np.array([1e4, 1e6])
    np.testing.assert_allclose(stirling_error(far), 1 / (12 * far) - 1 / (360 * far**3), rtol=1e-15)


@pytest.mark.parametrize("n", [10_001, 123_457, 416_667, 1_000_000])
@pytest.mark.parametrize("nd2", [2.2, 10.0, 50.0, 300.0])
def test_smirnov_sum_matches_scipy(n, nd2):
    d = float(np.sqrt(nd2 / n))
    assert smirnov_sf(n, d) == pytest.approx(special.smirnov(n, d), rel=1e-11)


def test_smirnov_sum_on_small_n_and_its_edges():
    for n, d in [(2, 0.3), (10, 0.05), (50, 0.4), (1000, 0.01), (1000, 0.3)]:
        expected = special.smirnov(n, d)
        assert expected > 1e-300
        assert smirnov_sf(n, d) == pytest.approx(expected, rel=1e-11)
    # n(1 − d) whole: its last term, (1 − d − v/n)^(n−v) = 0, is left out instead of giving log(0)
    assert smirnov_sf(100, 0.25) == pytest.approx(special.smirnov(100, 0.25), rel=1e-11)


def _agrees(ours: float, theirs: float) -> bool:
    """Equal to 1e-11 relative where scipy's value is a normal double; below 1e-300 both are (nearly) subnormal."""
    return 0.0 <= ours <= 1.0 and (ours == pytest.approx(theirs, rel=1e-11) if theirs >= 1e-300 else ours < 1e-290)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(SUM_MIN_N + 1, 60_000), nd2=st.floats(2.2, 369.99), whole=st.booleans())
def test_kstwo_sf_equals_scipy_in_the_zone(n, nd2, whole):
    """Where our sum replaces scipy's (also when n·(1 − d) is a whole number, its last term then 0)."""
    d = float(np.sqrt(nd2 / n))
    if whole:
        d = round(n * d) / n
    assert _agrees(kstwo_sf(d, float(n)), float(stats.kstwo.sf(d, n)))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 60_000), nd2=st.floats(0.0, 2000.0), large_d=st.floats(0.5, 1.0))
def test_kstwo_sf_equals_scipy_outside_the_zone(n, nd2, large_d):
    """Outside the zone (small n, n·d² < 2.2 or ≥ 370, d ≥ 0.5) the value is scipy's own."""
    for d in (min(float(np.sqrt(nd2 / n)), 0.999), large_d):
        assert _agrees(kstwo_sf(d, float(n)), float(stats.kstwo.sf(d, n)))


@pytest.mark.parametrize("n", [SUM_MIN_N, SUM_MIN_N + 1, 416_667, SMIRNOV_MAX_COMPUTE_N])
def test_kstwo_sf_at_the_zone_limits_of_n(n):
    d = float(np.sqrt(10 / n))
    assert _agrees(kstwo_sf(d, float(n)), float(stats.kstwo.sf(d, n)))


def test_beyond_the_compute_limit_scipy_approximation_is_kept():
    n = SMIRNOV_MAX_COMPUTE_N + 1
    d = float(np.sqrt(10 / n))
    assert kstwo_sf(d, float(n)) == stats.kstwo.sf(d, n)


def test_exact_ks_p_value_matches_ks_2samp_in_the_slow_zone():
    """A small shift at 60k vs 40k values (n·d² ≈ 8, inside the zone): same D and p as ks_2samp."""
    rng = np.random.default_rng(7)
    ref, cur = np.sort(rng.normal(0, 1, 60_000)), np.sort(rng.normal(0.02, 1, 40_000))
    expected = stats.ks_2samp(ref, cur)
    ours = ks_exact(ref, cur)
    en = 60_000 * 40_000 / 100_000
    assert 2.2 <= en * ours.statistic**2 < 370
    assert ours.statistic == pytest.approx(expected.statistic, abs=1e-15)
    assert ours.p_value == pytest.approx(expected.pvalue, rel=1e-11)
