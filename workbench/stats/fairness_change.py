"""Change in a disparity: a widening gap over time, and champion vs challenger.

A gap is d = r_g − r_ref (group minus reference rate). Its variance is the unpooled
p_g(1 − p_g)/n_g + p_r(1 − p_r)/n_r with the Agresti–Caffo adjustment p = (x + 1)/(n + 2), so a
rate of 0 or 1 does not get zero variance (Agresti & Caffo 2000).

- Over time: the slope of the gap on the chunk index by weighted least squares with the known
  variances (weights 1/v_t): slope = Σw(t − t̄)(d − d̄)/Σw(t − t̄)², se = 1/√Σw(t − t̄)², z = slope/se
  (equals statsmodels WLS with ``cov_type="fixed scale"``). A gap *widens* when the slope is
  significant and points away from 0 (same sign as the latest gap).
- Champion vs challenger: the change of a gap between two independent samples,
  z = (d₂ − d₁)/√(v₁ + v₂), two-sided normal p. For fairlearn's max − min disparities, whose sampling
  distribution is not normal, the change's interval comes from independent stratified bootstraps of
  both versions (Δ* = disparity*₂ − disparity*₁), significant when it excludes 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workbench.stats import dist


def gap_variance(x_g: float, n_g: float, x_r: float, n_r: float) -> float:
    """Variance of r_g − r_ref with Agresti–Caffo rates (x + 1)/(n + 2); NaN when a side is empty."""
    if n_g <= 0 or n_r <= 0:
        return math.nan
    p_g = (x_g + 1) / (n_g + 2)
    p_r = (x_r + 1) / (n_r + 2)
    return p_g * (1 - p_g) / n_g + p_r * (1 - p_r) / n_r


@dataclass(frozen=True)
class Trend:
    """Slope of a gap per chunk with its standard error and test; widening when it grows away from 0."""

    slope: float
    se: float
    z: float
    p_value: float
    chunks: int
    widening: bool


def gap_trend(gaps: np.ndarray, variances: np.ndarray, alpha: float = 0.05) -> Trend | None:
    """GLS slope of ``gaps`` over chunk index 0, 1, … with known ``variances`` (None under 3 usable chunks)."""
    gaps = np.asarray(gaps, dtype=float)
    variances = np.asarray(variances, dtype=float)
    t = np.arange(len(gaps), dtype=float)
    ok = np.isfinite(gaps) & np.isfinite(variances) & (variances > 0)
    if ok.sum() < 3:
        return None
    w = 1 / variances[ok]
    t, d = t[ok], gaps[ok]
    t_bar = np.sum(w * t) / w.sum()
    d_bar = np.sum(w * d) / w.sum()
    sxx = np.sum(w * (t - t_bar) ** 2)
    if sxx <= 0:
        return None
    slope = float(np.sum(w * (t - t_bar) * (d - d_bar)) / sxx)
    se = float(1 / np.sqrt(sxx))
    z = slope / se
    p = 2 * dist.norm_sf(abs(z))
    widening = bool(p < alpha and d[-1] != 0 and np.sign(slope) == np.sign(d[-1]))
    return Trend(slope, se, z, p, int(ok.sum()), widening)


@dataclass(frozen=True)
class GapChange:
    """A gap in two independent samples and the test of its change."""

    before: float | None
    after: float | None
    change: float | None
    z: float | None
    p_value: float | None


def gap_change(d1: float, v1: float, d2: float, v2: float) -> GapChange:
    """z-test of d₂ − d₁ for two independent gaps with variances v₁, v₂ (None parts when undefined)."""
    if not all(math.isfinite(x) for x in (d1, v1, d2, v2)) or v1 + v2 <= 0:
        clean = lambda x: x if math.isfinite(x) else None  # noqa: E731
        change = d2 - d1 if math.isfinite(d1) and math.isfinite(d2) else math.nan
        return GapChange(clean(d1), clean(d2), clean(change), None, None)
    z = (d2 - d1) / math.sqrt(v1 + v2)
    return GapChange(d1, d2, d2 - d1, z, 2 * dist.norm_sf(abs(z)))
