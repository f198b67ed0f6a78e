"""Shared statistics against their references: statsmodels (adjustment, z-test), scipy (JS), hand PSI."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from workbench.stats.divergence import js_distance, psi
from workbench.stats.multiple import adjust_pvalues, adjusted_alpha
from workbench.stats.proportions import two_proportion_ztest

p_lists = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=30)


@pytest.mark.parametrize(("ours", "theirs"), [("holm", "holm"), ("bh", "fdr_bh")])
@given(p=p_lists)
@settings(max_examples=60, deadline=None)
def test_adjusted_pvalues_equal_statsmodels(ours, theirs, p):
    expected = multipletests(p, method=theirs)[1]
    np.testing.assert_allclose(adjust_pvalues(p, ours), expected, rtol=0, atol=1e-12)


def test_nan_pvalues_are_not_counted_as_tests():
    out = adjust_pvalues([0.01, np.nan, 0.04], "holm")
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.04])


@pytest.mark.parametrize("method", ["holm", "bh"])
@given(p=p_lists, alpha=st.sampled_from([0.01, 0.05, 0.1]))
@settings(max_examples=200, deadline=None)
def test_adjusted_alpha_agrees_with_the_adjusted_pvalue(method, p, alpha):
    # raw p ≤ the per-test level exactly when the adjusted p ≤ alpha: a CI at that level never contradicts it
    significant = adjust_pvalues(p, method) <= alpha
    assert np.array_equal(np.asarray(p) <= adjusted_alpha(alpha, p, method), significant)


@pytest.mark.parametrize(
    "counts", [(120, 1000, 150, 1000), (3, 40, 11, 38), (6200, 10_000, 6500, 10_000), (0, 10, 4, 12)]
)
def test_two_proportion_ztest_equals_statsmodels(counts):
    x_a, n_a, x_b, n_b = counts
    z, p = proportions_ztest([x_a, x_b], [n_a, n_b])
    ours = two_proportion_ztest(x_a, n_a, x_b, n_b)
    assert ours.statistic == pytest.approx(z, abs=1e-12)
    assert ours.p_value == pytest.approx(p, abs=1e-12)


@pytest.mark.parametrize("counts", [(0, 10, 0, 12), (10, 10, 12, 12), (0, 0, 3, 5)])
def test_two_proportion_ztest_without_variance_is_nan_not_a_crash(counts):
    result = two_proportion_ztest(*counts)
    assert np.isnan(result.statistic) and np.isnan(result.p_value)


def test_psi_by_hand():
    ref, cur = [50, 30, 20], [30, 30, 40]
    expected = (0.3 - 0.5) * np.log(0.3 / 0.5) + 0 + (0.4 - 0.2) * np.log(0.4 / 0.2)
    assert psi(ref, cur) == pytest.approx(expected, abs=1e-12)


def test_psi_replaces_an_empty_bin_by_1e4_without_renormalising():
    ref, cur = [50, 50, 0], [40, 40, 20]
    expected = (0.4 - 0.5) * np.log(0.4 / 0.5) * 2 + (0.2 - 1e-4) * np.log(0.2 / 1e-4)
    assert psi(ref, cur) == pytest.approx(expected, abs=1e-12)


@given(
    ref=st.lists(st.integers(0, 1000), min_size=2, max_size=12),
    data=st.data(),
)
@settings(max_examples=200, deadline=None)
def test_psi_is_non_negative_and_js_is_symmetric_in_unit_interval(ref, data):
    cur = data.draw(st.lists(st.integers(0, 1000), min_size=len(ref), max_size=len(ref)))
    if sum(ref) == 0 or sum(cur) == 0:
        return
    assert psi(ref, cur) >= 0
    d = js_distance(ref, cur)
    assert 0 <= d <= 1
    assert d == pytest.approx(js_distance(cur, ref), abs=1e-12)
    assert d == pytest.approx(jensenshannon(ref, cur, base=2), abs=1e-9)
