"""Sample size, minimum detectable effect and days needed for an A/B test (two-sided, equal arms).

Proportions use Cohen's h = 2·asin√p₂ − 2·asin√p₁ (``statsmodels.stats.proportion.proportion_effectsize``)
with the normal power equation of ``statsmodels.stats.power.NormalIndPower``; means use d = Δ/σ with the
observed σ. n per arm is rounded up. With k arms, k − 1 variants are each compared with control at
α/(k − 1) (Bonferroni: the level Holm starts from), so the plan holds after the adjustment we apply.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from workbench.core.errors import InputError


@dataclass(frozen=True)
class PowerPlan:
    """How many units per arm detect ``mde_abs`` with ``power`` at ``alpha`` (two-sided), and what that means."""

    kind: str
    baseline: float
    mde_abs: float
    mde_rel: float | None
    alpha: float
    alpha_per_comparison: float
    power: float
    arms: int
    effect_size: float
    n_per_arm: int
    total: int
    std: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``n_per_arm`` is the CLI contract)."""
        return asdict(self)


def _check(alpha: float, power: float, arms: int) -> float:
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be between 0 and 1, not {alpha}")
    if not 0 < power < 1:
        raise InputError(f"power must be between 0 and 1, not {power}")
    if arms < 2:
        raise InputError(f"an A/B test needs at least 2 arms, not {arms}")
    return alpha / (arms - 1)


def _solve_n(effect_size: float, alpha: float, power: float) -> int:
    from statsmodels.stats.power import NormalIndPower

    n = NormalIndPower().solve_power(effect_size=abs(effect_size), alpha=alpha, power=power, ratio=1.0)
    return math.ceil(float(np.squeeze(n)))


def plan_proportion(
    baseline: float, mde: float, relative: bool = False, alpha: float = 0.05, power: float = 0.8, arms: int = 2
) -> PowerPlan:
    """Units per arm to detect baseline → baseline + mde (or baseline·(1 + mde) when ``relative``)."""
    per_test = _check(alpha, power, arms)
    if not 0 < baseline < 1:
        raise InputError(f"--baseline must be a rate strictly between 0 and 1, not {baseline}")
    target = baseline * (1 + mde) if relative else baseline + mde
    if mde == 0 or not 0 < target < 1:
        raise InputError(f"the MDE must move the rate to another value strictly between 0 and 1 (got {target:g})")
    from statsmodels.stats.proportion import proportion_effectsize

    h = float(proportion_effectsize(target, baseline))
    n = _solve_n(h, per_test, power)
    return PowerPlan("proportion", baseline, target - baseline, (target - baseline) / baseline, alpha, per_test,
                     power, arms, h, n, n * arms)  # fmt: skip


def plan_mean(
    baseline: float,
    std: float,
    mde: float,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    arms: int = 2,
) -> PowerPlan:
    """Units per arm to detect a shift of the mean by ``mde`` (or baseline·mde) given the observed σ: d = Δ/σ."""
    per_test = _check(alpha, power, arms)
    if not std > 0:
        raise InputError(f"the standard deviation must be positive, not {std}")
    delta = baseline * mde if relative else mde
    if delta == 0:
        raise InputError("the MDE must be non-zero (and a relative MDE needs a non-zero baseline)")
    d = delta / std
    n = _solve_n(d, per_test, power)
    rel = delta / baseline if baseline else None
    return PowerPlan("mean", baseline, delta, rel, alpha, per_test, power, arms, d, n, n * arms, std)


def detectable_effect_size(n_per_arm: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The standardised effect (h or d) detectable with ``power`` at n per arm: NormalIndPower solved for it."""
    from statsmodels.stats.power import NormalIndPower

    if n_per_arm < 2:
        return math.inf
    return float(np.squeeze(NormalIndPower().solve_power(effect_size=None, nobs1=n_per_arm, alpha=alpha, power=power)))


def mde_proportion(baseline: float, n_per_arm: float, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """Smallest absolute upward lift detectable at n per arm: sin²(asin√p + h/2) − p; None when out of reach."""
    h = detectable_effect_size(n_per_arm, alpha, power)
    angle = math.asin(math.sqrt(baseline)) + h / 2
    return math.sin(angle) ** 2 - baseline if math.isfinite(h) and angle <= math.pi / 2 else None


def mde_mean(std: float, n_per_arm: float, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """Smallest absolute shift of a mean detectable at n per arm: d·σ."""
    d = detectable_effect_size(n_per_arm, alpha, power)
    return d * std if math.isfinite(d) else None


def power_at(effect_size: float, n_per_arm: np.ndarray | float, alpha: float = 0.05) -> np.ndarray:
    """Power of the two-sided normal test for a standardised effect at n per arm (the power curve)."""
    from scipy import stats

    n = np.asarray(n_per_arm, dtype=float)
    crit = stats.norm.isf(alpha / 2)
    shift = abs(effect_size) * np.sqrt(n / 2)  # ratio 1: the difference's SE shrinks with √(n/2)
    return stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift)


def days_needed(n_needed: int, n_so_far: float, days_so_far: float) -> float | None:
    """Further days at the traffic observed so far until ``n_needed`` per arm (0 when reached; None without traffic)."""
    if n_so_far >= n_needed:
        return 0.0
    if n_so_far <= 0 or days_so_far <= 0:
        return None
    return (n_needed - n_so_far) / (n_so_far / days_so_far)
