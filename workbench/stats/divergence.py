"""Distances between two distributions given as bin shares, shared by drift and the representation audit.

Conventions (issue 3, also in the README): shares come from counts over bins fixed on the reference;
an empty bin's share is replaced by ``EMPTY_BIN_SHARE`` = 1e-4 for PSI, with no renormalisation.
"""

from __future__ import annotations

import numpy as np

EMPTY_BIN_SHARE = 1e-4


def shares(counts: np.ndarray | list[float]) -> np.ndarray:
    """Counts → shares summing to 1 (all zeros stay zeros)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def psi(reference_counts: np.ndarray | list[float], current_counts: np.ndarray | list[float]) -> float:
    """Population stability index Σ (cur − ref)·ln(cur/ref) over bins (natural log, ≥ 0).

    Shares are counts/total per window; a zero share is replaced by 1e-4 (no renormalisation), as
    in Evidently and NannyML. Reference: Yurdakul (2018), "Statistical properties of the PSI".
    """
    ref = shares(reference_counts)
    cur = shares(current_counts)
    ref = np.where(ref == 0, EMPTY_BIN_SHARE, ref)
    cur = np.where(cur == 0, EMPTY_BIN_SHARE, cur)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def js_distance(p_counts: np.ndarray | list[float], q_counts: np.ndarray | list[float]) -> float:
    """Jensen–Shannon distance with log base 2, in [0, 1]: √(½ KL(p‖m) + ½ KL(q‖m)), m = (p + q)/2.

    Empty bins contribute 0 (no flooring). Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
    """
    p = shares(p_counts)
    q = shares(q_counts)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(np.sqrt(max((kl_p + kl_q) / 2, 0.0)))
