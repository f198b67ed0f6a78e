"""Multiple-comparison adjustment of p-values: drift (features), A/B (variants, metrics), fairness (groups)."""

from __future__ import annotations

from typing import Literal

import numpy as np

AdjustMethod = Literal["holm", "bh", "none"]
ADJUST_METHODS: tuple[str, ...] = ("holm", "bh", "none")


def adjust_pvalues(p_values: np.ndarray | list[float], method: AdjustMethod = "holm") -> np.ndarray:
    """Return adjusted p-values in the input order; NaN inputs stay NaN and do not count as tests.

    holm: step-down p_(i)·(m − i + 1), running max, capped at 1 (Holm 1979; controls FWER).
    bh: step-up p_(i)·m / i, running min from the top, capped at 1 (Benjamini & Hochberg 1995; FDR).
    Both equal ``statsmodels.stats.multitest.multipletests(method="holm" | "fdr_bh")``.
    """
    p = np.asarray(p_values, dtype=float)
    if method not in ADJUST_METHODS:
        raise ValueError(f"unknown adjustment {method!r}: use one of {', '.join(ADJUST_METHODS)}")
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0 or method == "none":
        out[valid] = p[valid]
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    ranked = p[order]
    if method == "holm":
        adjusted = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:
        adjusted = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    out[order] = np.minimum(adjusted, 1.0)
    return out


def adjusted_alpha(alpha: float, p_values: np.ndarray | list[float], method: AdjustMethod = "holm") -> np.ndarray:
    """Per-test significance level that agrees with :func:`adjust_pvalues` (for CIs that never contradict them).

    A test is significant after adjustment iff its raw p ≤ the returned level, so a (1 − level) CI
    built for each test excludes the null exactly when its adjusted p ≤ alpha.
    holm: alpha/(m − rank + 1) while the step-down has not stopped, then the level of the last rejected test.
    bh: alpha·k/m with k the number of rejections (Benjamini & Yekutieli 2005 FCR-adjusted intervals).
    """
    p = np.asarray(p_values, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    levels = np.full_like(p, np.nan)
    if m == 0:
        return levels
    if method == "none":
        levels[valid] = alpha
        return levels
    adjusted = adjust_pvalues(p, method)
    if method == "bh":
        k = int(np.sum(adjusted[valid] <= alpha))
        levels[valid] = alpha * max(k, 1) / m
        return levels
    order = valid[np.argsort(p[valid], kind="stable")]
    for rank, index in enumerate(order):
        levels[index] = alpha / (m - rank)
        if adjusted[index] > alpha:  # step-down stops: every later test keeps this (smallest useful) level
            levels[order[rank:]] = alpha / (m - rank)
            break
    return levels
