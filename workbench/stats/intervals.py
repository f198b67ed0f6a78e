"""Confidence intervals for rates, shared by every page that draws a band around a proportion."""

from __future__ import annotations

import numpy as np

from workbench.stats import dist


def wilson_interval(successes: np.ndarray | float, n: np.ndarray | float, confidence: float = 0.95) -> tuple:
    """Wilson score interval (lower, upper) for successes/n; NaN where n = 0.

    center = (p̂ + z²/2n)/(1 + z²/n), half = z·√(p̂(1−p̂)/n + z²/4n²)/(1 + z²/n), z = Φ⁻¹(1 − α/2).
    Reference: Wilson (1927); equals statsmodels ``proportion_confint(method="wilson")``.
    """
    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = dist.norm_ppf(1 - (1 - confidence) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = successes / n
        denom = 1 + z**2 / n
        center = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        lower = np.where(n > 0, np.clip(center - half, 0, 1), np.nan)
        upper = np.where(n > 0, np.clip(center + half, 0, 1), np.nan)
    return lower, upper
