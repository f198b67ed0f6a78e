"""Tests on proportions from counts, shared by the A/B test (arms) and the fairness audit (groups)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.stats import dist


@dataclass(frozen=True)
class ZTest:
    """A two-sided z-test: statistic and p-value (NaN when undefined, e.g. both rates 0 or 1)."""

    statistic: float
    p_value: float


def two_proportion_ztest(successes_a: float, n_a: float, successes_b: float, n_b: float) -> ZTest:
    """Pooled two-proportion z-test of p_a = p_b, two-sided; z = (p̂_a − p̂_b)/√(p̄(1 − p̄)(1/n_a + 1/n_b)).

    p̄ is the pooled rate (x_a + x_b)/(n_a + n_b). Equals
    ``statsmodels.stats.proportion.proportions_ztest([x_a, x_b], [n_a, n_b])``. NaN when an arm
    is empty or the pooled rate is 0 or 1 (no variance: nothing to test).
    """
    if n_a <= 0 or n_b <= 0:
        return ZTest(float("nan"), float("nan"))
    pooled = (successes_a + successes_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance <= 0:
        return ZTest(float("nan"), float("nan"))
    z = (successes_a / n_a - successes_b / n_b) / np.sqrt(variance)
    return ZTest(float(z), 2 * dist.norm_sf(abs(z)))
