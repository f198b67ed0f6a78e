"""Does an A/B effect differ across segments? Cochran's Q with I², and the per-segment tests' adjustment.

Each segment value gives an estimate of the same difference (variant − control, in the metric's units) with
its standard error. Under "one effect everywhere" the inverse-variance weighted estimates scatter only by
chance; Cochran's Q measures how much more they scatter. Pure math on the per-segment estimates: the
segments' sufficient statistics are aggregated in the engine, and each segment's test comes from
:mod:`workbench.stats.abtest`. The per-segment p-values are adjusted as one family with
:mod:`workbench.stats.multiple`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workbench.stats import dist
from workbench.stats.multiple import AdjustMethod, adjust_pvalues, adjusted_alpha


@dataclass(frozen=True)
class Heterogeneity:
    """Cochran's Q test of "the same effect in every segment", with I², τ² and the fixed-effect pooled estimate.

    ``k``: segments tested; ``q``: Cochran's Q; ``df`` = k − 1; ``p_value``: P(χ²_df ≥ Q); ``i2``: the share
    of the scatter beyond chance (0 to 1); ``tau2``: the between-segment variance (DerSimonian–Laird, metric
    units²); ``pooled``/``pooled_se``: the inverse-variance weighted effect and its standard error. Every
    field is None when fewer than two segments can be tested.
    """

    k: int
    q: float | None
    df: int | None
    p_value: float | None
    i2: float | None
    tau2: float | None
    pooled: float | None
    pooled_se: float | None

    @property
    def defined(self) -> bool:
        """True when the test ran (two or more segments with a positive standard error)."""
        return self.p_value is not None


def cochran_q(estimates: list[float] | np.ndarray, standard_errors: list[float] | np.ndarray) -> Heterogeneity:
    """Returns Cochran's Q across segments: Q = Σ wᵢ(yᵢ − ȳ)², wᵢ = 1/SEᵢ², ȳ = Σ wᵢyᵢ / Σ wᵢ, df = k − 1.

    p = P(χ²_{k−1} ≥ Q) (Cochran 1954); I² = max(0, (Q − df)/Q) (Higgins & Thompson 2002, truncated at 0);
    τ² = max(0, (Q − df)/(Σw − Σw²/Σw)) (DerSimonian & Laird 1986); pooled SE = 1/√Σw. Estimates with a
    missing or non-positive SE are left out. Equals ``statsmodels.stats.meta_analysis.combine_effects(y, SE²,
    method_re="chi2")``'s ``q``, ``test_homogeneity().pvalue``, ``i2`` (clipped at 0), ``tau2`` and
    ``mean_effect_fe``.
    """
    y = np.asarray(estimates, dtype=float)
    se = np.asarray(standard_errors, dtype=float)
    keep = np.isfinite(y) & np.isfinite(se) & (se > 0)
    y, se = y[keep], se[keep]
    k = len(y)
    if k < 2:
        return Heterogeneity(k, None, None, None, None, None, None, None)
    w = 1.0 / se**2
    total = float(w.sum())
    pooled = float((w * y).sum() / total)
    q = float((w * (y - pooled) ** 2).sum())
    df = k - 1
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    tau2 = max(0.0, (q - df) / (total - float((w**2).sum()) / total))
    return Heterogeneity(k, q, df, dist.chi2_sf(q, df), i2, tau2, pooled, 1.0 / math.sqrt(total))


@dataclass(frozen=True)
class SegmentFamily:
    """The per-segment tests adjusted together: adjusted p-values and the matching per-test CI levels (α)."""

    p_adjusted: tuple[float, ...]
    levels: tuple[float, ...]
    size: int
    method: str


def adjust_segments(p_values: list[float] | np.ndarray, alpha: float, method: AdjustMethod = "holm") -> SegmentFamily:
    """Returns every segment × metric × variant p-value adjusted as one family, with each test's CI level.

    Holm (family-wise error) or BH (false discovery rate) over the tests that ran (NaN: not tested, e.g. a
    segment too small to read, stays NaN and does not count); the levels are
    :func:`workbench.stats.multiple.adjusted_alpha`'s, so a per-segment interval excludes 0 exactly when its
    adjusted p-value is ≤ α (the overall results' convention).
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = adjust_pvalues(p, method) if len(p) else p
    levels = adjusted_alpha(alpha, p, method) if len(p) else p
    size = int(np.sum(~np.isnan(p)))
    return SegmentFamily(tuple(float(x) for x in adjusted), tuple(float(x) for x in levels), size, method)
