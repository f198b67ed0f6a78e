"""Always-valid inference for an A/B test looked at every day: asymptotic confidence sequences.

A fixed-horizon interval covers the truth 95% of the time *at one pre-planned look*; checked daily and
stopped at the first exclusion of 0, its false-positive rate climbs far above 5%. A confidence sequence
covers the truth at every look simultaneously. We use the asymptotic confidence sequence of Waudby-Smith,
Arnold, Wu, Howard & Ramdas (2023, arXiv:2103.06476, Prop. 2.5 and eq. 161; Howard et al. 2021 for the
boundary), as GrowthBook and Eppo do, with the tuning parameter N* (the sample size where the sequence is
tightest; GrowthBook's default 5000).
"""

from __future__ import annotations

import numpy as np

DEFAULT_TUNING_N = 5000.0


def sequential_rho(alpha: float, tuning_n: float = DEFAULT_TUNING_N) -> float:
    """ρ that makes the two-sided sequence tightest at n = N*: √((−2 ln α + ln(−2 ln α + 1))/N*) (eq. 161)."""
    if tuning_n <= 0:
        raise ValueError("the sequential tuning parameter N* must be positive")
    log_alpha = -2 * np.log(alpha)
    return float(np.sqrt((log_alpha + np.log(log_alpha + 1)) / tuning_n))


def cs_halfwidth(
    se: np.ndarray | float, n: np.ndarray | float, alpha: float, tuning_n: float = DEFAULT_TUNING_N
) -> np.ndarray:
    """Half-width of the (1 − α) asymptotic confidence sequence at total sample size n (both arms).

    With s² = SE²·n (the per-observation variance of the estimate):
    s·√(2(nρ² + 1)/(n²ρ²) · ln(√(nρ² + 1)/α)). Same formula as GrowthBook's sequentialIntervalHalfwidth.
    """
    se = np.asarray(se, dtype=float)
    n = np.asarray(n, dtype=float)
    rho2 = sequential_rho(alpha, tuning_n) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = se**2 * n
        return np.sqrt(s2 * 2 * (n * rho2 + 1) / (n * n * rho2) * np.log(np.sqrt(n * rho2 + 1) / alpha))


def always_valid_p(
    diff: np.ndarray | float,
    se: np.ndarray | float,
    n: np.ndarray | float,
    alpha: float,
    tuning_n: float = DEFAULT_TUNING_N,
) -> np.ndarray:
    """Always-valid p-value min(1, 1/E) with E = exp(ρ²·n·z²/(2(nρ² + 1)))/√(nρ² + 1), z = Δ/SE (eq. 155).

    It is below α exactly when the (1 − α) confidence sequence excludes 0 (ρ is tuned for α).
    """
    diff, se, n = (np.asarray(x, dtype=float) for x in (diff, se, n))
    rho2 = sequential_rho(alpha, tuning_n) ** 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z2 = (diff / se) ** 2
        log_e = rho2 * n * z2 / (2 * (n * rho2 + 1)) - 0.5 * np.log(n * rho2 + 1)
        return np.minimum(1.0, np.exp(-log_e))
