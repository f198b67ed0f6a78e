"""Drift statistics against their references: scipy (KS, chi-square, JS, Wasserstein) and a hand PSI, to 1e-9."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from workbench.stats.divergence import js_distance, psi
from workbench.stats.drift import (
    DriftSettings,
    _cdfs_on_union,
    bin_counts,
    bin_counts_from_ge,
    chi_square,
    distribution_view,
    exact_ks_and_wasserstein,
    ks_exact,
    ks_from_grid,
    learned_threshold,
    merged_edges,
    normalised_wasserstein,
    sorted_quantiles,
    wasserstein_exact,
    wasserstein_from_grid,
)

RNG = np.random.default_rng(42)
REF = RNG.normal(10, 2, 3000)
CUR = RNG.normal(10.6, 2.4, 2500)
BIG_REF = RNG.lognormal(3.5, 0.8, 40_000)
BIG_CUR = RNG.lognormal(3.6, 0.8, 30_000)


def deciles(values: np.ndarray) -> np.ndarray:
    return merged_edges(np.quantile(values, np.arange(1, 10) / 10))


def test_deciles_make_ten_equal_reference_bins_with_open_outer_bins():
    edges = deciles(REF)
    counts = bin_counts(REF, edges)
    assert len(counts) == 10 and counts.sum() == len(REF)
    np.testing.assert_allclose(counts, len(REF) / 10, atol=1)
    assert bin_counts(np.array([-1e9, 1e9]), edges).tolist() == [1] + [0] * 8 + [1]  # outer bins are open


def test_a_value_on_an_edge_counts_in_the_bin_to_its_right_like_x_ge_edge():
    edges = np.array([1.0, 2.0])
    assert bin_counts(np.array([0.5, 1.0, 1.5, 2.0]), edges).tolist() == [1, 2, 1]
    ge = [np.sum(np.array([0.5, 1.0, 1.5, 2.0]) >= e) for e in edges]
    assert bin_counts_from_ge(4, ge).tolist() == [1, 2, 1]


def test_counts_from_ge_indicator_sums_equal_binning():
    edges = deciles(REF)
    ge = [np.count_nonzero(np.greater_equal(CUR, e)) for e in edges]
    np.testing.assert_array_equal(bin_counts_from_ge(len(CUR), ge), bin_counts(CUR, edges))


def test_discrete_feature_deciles_merge_into_fewer_bins():
    values = RNG.poisson(1.0, 5000).astype(float)
    edges = deciles(values)
    assert len(edges) < 9 and np.all(np.diff(edges) > 0)


def test_psi_by_hand_on_decile_bins_with_the_empty_bin_floor():
    ref = np.array([30.0, 30.0, 40.0, 0.0])
    cur = np.array([20.0, 40.0, 30.0, 10.0])
    r, c = ref / 100, cur / 100
    r[3] = 1e-4  # empty reference bin: 1e-4, shares not renormalised
    expected = sum((ci - ri) * np.log(ci / ri) for ri, ci in zip(r, c, strict=True))
    assert psi(ref, cur) == pytest.approx(expected, abs=1e-12)


def test_psi_on_deciles_by_hand_from_values():
    edges = deciles(REF)
    ref_share = bin_counts(REF, edges) / len(REF)
    cur_share = bin_counts(CUR, edges) / len(CUR)
    ref_share[ref_share == 0] = 1e-4
    cur_share[cur_share == 0] = 1e-4
    expected = float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))
    assert psi(bin_counts(REF, edges), bin_counts(CUR, edges)) == pytest.approx(expected, abs=1e-12)


def test_js_distance_on_bins_equals_scipy_base_2():
    edges = deciles(REF)
    p, q = bin_counts(REF, edges), bin_counts(CUR, edges)
    assert js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)


@pytest.mark.parametrize(("ref", "cur"), [(REF, CUR), (REF[:40], CUR[:25]), (BIG_REF, BIG_CUR)])
def test_exact_ks_equals_scipy(ref, cur):
    expected = stats.ks_2samp(ref, cur)
    ours = ks_exact(np.sort(ref), np.sort(cur))
    assert ours.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert ours.p_value == pytest.approx(expected.pvalue, abs=1e-9)
    assert ours.method == "exact"


def test_exact_ks_with_ties_equals_scipy():
    ref = RNG.poisson(4, 20_000).astype(float)
    cur = RNG.poisson(4.3, 15_000).astype(float)
    expected = stats.ks_2samp(ref, cur)
    ours = ks_exact(np.sort(ref), np.sort(cur))
    assert ours.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert ours.p_value == pytest.approx(expected.pvalue, abs=1e-9)


def test_grid_ks_is_within_its_error_bound_of_scipy():
    lo, hi = np.quantile(BIG_REF, [0.001, 0.999])
    edges = lo + (hi - lo) / 10_000 * np.arange(10_001)
    grid = ks_from_grid(bin_counts(BIG_REF, edges), bin_counts(BIG_CUR, edges))
    exact = stats.ks_2samp(BIG_REF, BIG_CUR)
    assert grid.method == "grid"
    assert grid.statistic <= exact.statistic + 1e-12
    assert exact.statistic - grid.statistic <= grid.max_error + 1e-12
    assert grid.p_value == pytest.approx(exact.pvalue, rel=0.5, abs=1e-6)


def test_grid_ks_is_exact_for_integer_values_in_their_own_bins():
    ref = RNG.poisson(6, 20_000).astype(float)
    cur = RNG.poisson(6.5, 20_000).astype(float)
    edges = np.arange(0, 30) + 0.5  # every integer in its own bin
    grid = ks_from_grid(bin_counts(ref, edges), bin_counts(cur, edges))
    assert grid.statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)


@pytest.mark.parametrize(("ref", "cur"), [(REF, CUR), (BIG_REF, BIG_CUR), (REF[:7], CUR[:3])])
def test_exact_wasserstein_equals_scipy_and_normalises_by_the_reference_std(ref, cur):
    raw = wasserstein_exact(np.sort(ref), np.sort(cur))
    assert raw == pytest.approx(stats.wasserstein_distance(ref, cur), abs=1e-9)
    expected = stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
    assert normalised_wasserstein(raw, float(np.std(ref))) == pytest.approx(expected, abs=1e-9)


def test_wasserstein_of_a_constant_reference_is_divided_by_the_floor():
    assert normalised_wasserstein(0.5, 0.0) == pytest.approx(500.0)


def _grid_inputs(ref: np.ndarray, cur: np.ndarray, bins: int = 10_000):
    lo, hi = np.quantile(ref, [0.001, 0.999])
    edges = lo + (hi - lo) / bins * np.arange(bins + 1)

    def sums(values):
        index = np.searchsorted(edges, values, side="right")
        return np.bincount(index, weights=values, minlength=bins + 2)

    return edges, bin_counts(ref, edges), bin_counts(cur, edges), sums(ref), sums(cur)


def test_grid_wasserstein_is_close_to_scipy():
    approx = wasserstein_from_grid(*_grid_inputs(BIG_REF, BIG_CUR))
    assert approx == pytest.approx(stats.wasserstein_distance(BIG_REF, BIG_CUR), rel=0.01)


def test_grid_wasserstein_tails_are_exact_when_the_windows_do_not_overlap():
    ref = RNG.uniform(0, 1, 5000)
    cur = RNG.uniform(5, 6, 5000)
    approx = wasserstein_from_grid(*_grid_inputs(ref, cur))
    assert approx == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-3)


def test_chi_square_equals_scipy_without_continuity_correction():
    ref = np.array([500.0, 300.0, 200.0, 0.0])
    cur = np.array([420.0, 330.0, 190.0, 60.0])  # the last category is unseen in the reference
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    ours = chi_square(ref, cur)
    assert ours.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert ours.p_value == pytest.approx(expected.pvalue, abs=1e-9)
    assert ours.dof == expected.dof == 3


def test_chi_square_on_two_categories_also_without_correction():
    ref, cur = np.array([90.0, 10.0]), np.array([80.0, 20.0])
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert chi_square(ref, cur).p_value == pytest.approx(expected.pvalue, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**7)), min_size=2, max_size=12))
def test_chi_square_equals_scipy_on_any_table(columns):
    """Statistic, p-value and degrees of freedom as chi2_contingency(correction=False), on tables of any size and
    any counts (zeros, columns empty in both windows dropped first, as chi_square drops them)."""
    ref, cur = (np.array(c, dtype=float) for c in zip(*columns, strict=True))
    ours = chi_square(ref, cur)
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        assert np.isnan(ours.statistic) and np.isnan(ours.p_value) and ours.dof == 0
        return
    expected = stats.chi2_contingency(table, correction=False)
    assert ours.statistic == pytest.approx(expected.statistic, rel=1e-12, abs=1e-12)
    assert ours.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)
    assert ours.dof == expected.dof


def test_chi_square_with_one_category_is_nan_not_a_crash():
    assert np.isnan(chi_square([10.0], [12.0]).p_value)


def test_learned_threshold_is_mean_plus_minus_three_population_stds():
    values = [0.01, 0.02, 0.03, 0.02]
    lower, upper = learned_threshold(values)
    assert upper == pytest.approx(np.mean(values) + 3 * np.std(values))
    assert lower == pytest.approx(np.mean(values) - 3 * np.std(values))


def test_distribution_view_has_shares_and_monotone_ecdfs_without_values():
    edges, ref, cur, _, _ = _grid_inputs(REF, CUR, bins=400)
    view = distribution_view(edges, ref, cur)
    assert sum(view["hist_reference"]) == pytest.approx(1.0) and sum(view["hist_current"]) == pytest.approx(1.0)
    assert np.all(np.diff(view["ecdf_reference"]) >= 0) and len(view["ecdf_x"]) <= 200
    json.dumps(view)


def test_default_settings_are_the_issue_conventions():
    s = DriftSettings()
    assert (s.bins, s.psi_threshold, s.p_value, s.adjust, s.small_reference_rows) == (10, 0.1, 0.05, "bh", 1000)
    assert (s.dataset_drift_share, s.ks_exact_max_rows, s.ks_grid_bins) == (0.5, 2_000_000, 10_000)


counts = st.lists(st.integers(0, 1000), min_size=2, max_size=12)


@given(ref=counts, cur=counts)
@settings(max_examples=200, deadline=None)
def test_psi_is_never_negative(ref, cur):
    n = min(len(ref), len(cur))
    if sum(ref[:n]) and sum(cur[:n]):
        assert psi(ref[:n], cur[:n]) >= -1e-12


@given(ref=counts, cur=counts)
@settings(max_examples=200, deadline=None)
def test_js_distance_is_symmetric_and_in_unit_interval(ref, cur):
    n = min(len(ref), len(cur))
    if sum(ref[:n]) and sum(cur[:n]):
        d = js_distance(ref[:n], cur[:n])
        assert 0 <= d <= 1 + 1e-12
        assert d == pytest.approx(js_distance(cur[:n], ref[:n]), abs=1e-12)


values = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60)


@given(ref=values, cur=values, seed=st.integers(0, 1000))
@settings(max_examples=100, deadline=None)
def test_statistics_do_not_depend_on_row_order(ref, cur, seed):
    ref, cur = np.array(ref), np.array(cur)
    shuffled = np.random.default_rng(seed).permutation(cur)
    edges = deciles(ref)
    assert psi(bin_counts(ref, edges), bin_counts(cur, edges)) == psi(
        bin_counts(ref, edges), bin_counts(shuffled, edges)
    )
    assert ks_exact(np.sort(ref), np.sort(cur)).statistic == ks_exact(np.sort(ref), np.sort(shuffled)).statistic
    a = wasserstein_exact(np.sort(ref), np.sort(cur))
    assert a == pytest.approx(stats.wasserstein_distance(ref, shuffled), rel=1e-9, abs=1e-6)


def test_psi_is_zero_for_identical_windows():
    edges = deciles(REF)
    assert psi(bin_counts(REF, edges), bin_counts(REF, edges)) == 0.0


def test_exact_ks_and_wasserstein_above_scipys_exact_limit_equal_scipy_with_ties():
    # above 10,000 values per sample our merge of the sorted runs replaces scipy; ties must count as scipy's
    rng = np.random.default_rng(11)
    ref = np.round(rng.normal(0, 1, 25_000), 2)
    cur = np.round(rng.normal(0.03, 1.1, 18_000), 2)
    ks, w = exact_ks_and_wasserstein(np.sort(ref), np.sort(cur))
    expected = stats.ks_2samp(ref, cur)
    assert ks.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert ks.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert w == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-9)


finite_or_tied = st.lists(
    st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([0.0, 1.0, 2.5])), min_size=1, max_size=80
)
probabilities = st.lists(st.floats(0, 1), min_size=1, max_size=12)


@given(values=finite_or_tied, probs=probabilities)
@settings(max_examples=300, deadline=None)
def test_quantiles_of_sorted_values_equal_numpys_to_the_last_bit(values, probs):
    ordered = np.sort(np.array(values))
    np.testing.assert_array_equal(sorted_quantiles(ordered, probs), np.quantile(ordered, probs))


def test_quantiles_of_sorted_values_equal_numpys_at_the_ends_and_with_infinite_values():
    probs = [0.0, 0.001, 0.1, 0.5, 0.9, 0.999, 1.0]
    for values in ([7.0], [1.0, 2.0], [-np.inf, 0.0, 1.0, np.inf], [-np.inf, -np.inf], np.arange(1001.0)):
        ordered = np.sort(np.asarray(values, dtype=float))
        with np.errstate(invalid="ignore"):
            expected = np.quantile(ordered, probs)
        np.testing.assert_array_equal(sorted_quantiles(ordered, probs), expected)


@given(ref=finite_or_tied, cur=finite_or_tied)
@settings(max_examples=200, deadline=None)
def test_cdfs_on_the_union_equal_binary_searches_with_and_without_ties(ref, cur):
    ref, cur = np.sort(np.array(ref)), np.sort(np.array(cur))
    union, f_ref, f_cur = _cdfs_on_union(ref, cur)
    expected = np.unique(np.concatenate([ref, cur]))
    np.testing.assert_array_equal(union, expected)
    np.testing.assert_array_equal(f_ref, np.searchsorted(ref, expected, side="right") / len(ref))
    np.testing.assert_array_equal(f_cur, np.searchsorted(cur, expected, side="right") / len(cur))
