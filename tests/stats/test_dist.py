"""The special-function forms of the distributions equal scipy.stats' own, to the last bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from workbench.stats import dist

RNG = np.random.default_rng(1)
XS = [*RNG.normal(0, 3, 300), 0.0, 1e-9, 8.0, 37.0, -40.0]
QS = [*RNG.random(300), 1e-12, 0.5, 1 - 1e-12]
DFS = [1, 2.5, 7, 30, 1000, 1e6]


@pytest.mark.parametrize("df", DFS)
def test_student_t_tail_and_quantile_equal_scipy_stats(df: float) -> None:
    assert [dist.t_sf(x, df) for x in XS] == [float(stats.t.sf(x, df)) for x in XS]
    assert [dist.t_ppf(q, df) for q in QS] == [float(stats.t.ppf(q, df)) for q in QS]


def test_normal_tail_quantile_and_inverse_tail_equal_scipy_stats() -> None:
    assert [dist.norm_sf(x) for x in XS] == [float(stats.norm.sf(x)) for x in XS]
    assert [dist.norm_ppf(q) for q in QS] == [float(stats.norm.ppf(q)) for q in QS]
    assert [dist.norm_isf(q) for q in QS] == [float(stats.norm.isf(q)) for q in QS]
    assert dist.norm_ppf(0.975) == pytest.approx(1.959963984540054, abs=1e-15)


@pytest.mark.parametrize("df", [1, 2, 5, 40])
def test_chi_square_tail_equals_scipy_stats(df: int) -> None:
    xs = [*RNG.gamma(2, 3, 300), 0.0, 1e-6, 200.0]
    assert [dist.chi2_sf(x, df) for x in xs] == [float(stats.chi2.sf(x, df)) for x in xs]


def test_normal_density_and_cdf_equal_scipy_stats_on_scalars_and_arrays() -> None:
    xs = np.array(XS)
    assert [dist.norm_pdf(x) for x in XS] == [float(stats.norm.pdf(x)) for x in XS]
    assert [dist.norm_cdf(x) for x in XS] == [float(stats.norm.cdf(x)) for x in XS]
    assert np.array_equal(dist.norm_sf(xs), stats.norm.sf(xs)) and np.array_equal(dist.norm_cdf(xs), stats.norm.cdf(xs))
    assert isinstance(dist.norm_sf(1.0), float) and isinstance(dist.norm_sf(xs), np.ndarray)
