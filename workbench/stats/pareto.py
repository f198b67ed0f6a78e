"""The Pareto front of models on accuracy (higher is better) vs disparity (lower is better).

A model is on the front when no other model is at least as accurate and at least as fair, and strictly better
on one of the two (Pareto dominance; Fairlearn's dashboard draws model comparisons the same way). Points with an
undefined value (NaN) are on no front and dominate nothing.
"""

from __future__ import annotations

import numpy as np


def dominates(accuracy_a: float, disparity_a: float, accuracy_b: float, disparity_b: float) -> bool:
    """Whether model a dominates model b: accuracy_a ≥ accuracy_b, disparity_a ≤ disparity_b, one strictly."""
    values = np.array([accuracy_a, disparity_a, accuracy_b, disparity_b], dtype=float)
    if not np.isfinite(values).all():
        return False
    no_worse = accuracy_a >= accuracy_b and disparity_a <= disparity_b
    return bool(no_worse and (accuracy_a > accuracy_b or disparity_a < disparity_b))


def pareto_front(accuracy: np.ndarray | list[float], disparity: np.ndarray | list[float]) -> np.ndarray:
    """A boolean mask: True for each model that no other model dominates (ties: both stay on the front)."""
    acc = np.asarray(accuracy, dtype=float)
    disp = np.asarray(disparity, dtype=float)
    defined = np.isfinite(acc) & np.isfinite(disp)
    a_i, a_j = acc[:, None], acc[None, :]
    d_i, d_j = disp[:, None], disp[None, :]
    # dominated[i, j]: model j dominates model i
    dominated = (a_j >= a_i) & (d_j <= d_i) & ((a_j > a_i) | (d_j < d_i)) & defined[None, :]
    return defined & ~dominated.any(axis=1)
