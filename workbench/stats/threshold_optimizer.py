"""Post-processing thresholds per group from binned score counts: fairlearn's ``ThresholdOptimizer``, on aggregates.

Hardt, Price & Srebro (2016), "Equality of Opportunity in Supervised Learning", as fairlearn 0.15 implements it
(``fairlearn.postprocessing.ThresholdOptimizer``, objective ``accuracy_score``, ``grid_size=1000``):

- Each group's trade-off points come from every threshold on the score ("predict 1 when score ≥ t"). On
  rows fairlearn puts a threshold between every two distinct scores; here the scores are binned (a count of
  positives and negatives per score bin and group, from one GROUP BY), so the thresholds are the bin edges.
- ``demographic_parity``: per group the upper convex hull of (selection rate, accuracy), read on a grid of
  selection rates; the chosen rate maximises Σ_g (n_g / n) · accuracy_g(rate), and every group gets it.
- ``equalized_odds``: per group the upper convex hull of its ROC points (FPR, TPR) on a grid of FPRs; the
  reachable region is the lowest TPR over groups at each FPR; the chosen point maximises the overall accuracy
  (n₊·TPR + n₋·(1 − FPR)) / n; a group above that point mixes in a constant prediction (``p_ignore``).
- A point between two hull vertices is reached by randomising: threshold t₀ with probability p₀, else t₁.

The rates after are expectations over that randomisation (fairlearn's ``_pmf_predict``). Everything here is
numpy on counts: the bins of all groups cost as much at 5M rows as at 5,000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

CONSTRAINTS = ("demographic_parity", "equalized_odds")
GRID_SIZE = 1000  # fairlearn's default grid of selection rates / false positive rates


@dataclass(frozen=True)
class GroupThreshold:
    """One group's randomised threshold rule.

    Predict 1 when score ≥ ``threshold_0`` with probability ``p_0``, else when score ≥ ``threshold_1``
    (probability ``p_1`` = 1 − p₀); then, with probability ``p_ignore``, replace that by a draw that is 1 with
    probability ``constant`` (equalized odds only). A threshold of +inf selects nothing, −inf everything.
    ``first_bin_0`` / ``first_bin_1`` are the lowest score bins each threshold selects.
    """

    group: str
    threshold_0: float
    p_0: float
    threshold_1: float
    p_1: float
    p_ignore: float
    constant: float
    first_bin_0: int
    first_bin_1: int

    def rule(self) -> str:
        """The rule in words, e.g. 'score ≥ 0.450 with probability 0.62, else score ≥ 0.460'."""
        text = _threshold_text(self.threshold_0)
        if self.p_1 > 1e-12 and self.first_bin_1 != self.first_bin_0:
            text = f"{text} with probability {self.p_0:.3f}, else {_threshold_text(self.threshold_1)}"
        if self.p_ignore > 1e-12:
            text += f"; then with probability {self.p_ignore:.3f} a random 1 with probability {self.constant:.3f}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: thresholds as numbers (None for ±inf, said in ``rule``), probabilities, the rule in words."""
        finite = lambda x: float(x) if math.isfinite(x) else None  # noqa: E731
        return {
            "group": self.group,
            "threshold_0": finite(self.threshold_0),
            "p_0": self.p_0,
            "threshold_1": finite(self.threshold_1),
            "p_1": self.p_1,
            "p_ignore": self.p_ignore,
            "constant": self.constant,
            "operator": ">=",
            "rule": self.rule(),
        }


def _threshold_text(threshold: float) -> str:
    if threshold == math.inf:
        return "never 1"
    if threshold == -math.inf:
        return "always 1"
    return f"score ≥ {threshold:.3f}"


@dataclass(frozen=True)
class ThresholdFit:
    """The fitted rule: the constraint, the chosen operating point (``x``: selection rate or FPR; ``y``:
    the objective's value there, accuracy or TPR) and one :class:`GroupThreshold` per group."""

    constraint: str
    x: float
    y: float
    groups: tuple[GroupThreshold, ...]


def bin_thresholds(edges: np.ndarray | list[float]) -> np.ndarray:
    """Threshold of "select bins ≥ k" for k = 0 … B: −inf, the inner edges, +inf (length B + 1)."""
    return np.concatenate([[-math.inf], np.asarray(edges, dtype=float), [math.inf]])


def selected_counts(counts: np.ndarray) -> np.ndarray:
    """Counts at or above each bin: ``out[..., k] = Σ_{b ≥ k} counts[..., b]`` for k = 0 … B (last: 0)."""
    counts = np.asarray(counts, dtype=float)
    above = np.cumsum(counts[..., ::-1], axis=-1)[..., ::-1]
    return np.concatenate([above, np.zeros((*counts.shape[:-1], 1))], axis=-1)


def tradeoff_points(positives: np.ndarray, negatives: np.ndarray, x_metric: str, y_metric: str) -> tuple:
    """(x, y, k) of every threshold "select bins ≥ k", k = B … 0 (the order fairlearn meets them, highest first),
    with x, y fairlearn's ``METRIC_DICT`` metrics (``selection_rate``, ``false_positive_rate``,
    ``accuracy_score``, ``true_positive_rate``) of one group's binned positives and negatives."""
    tp, fp = selected_counts(positives), selected_counts(negatives)
    p, n = float(np.sum(positives)), float(np.sum(negatives))
    metric = {
        "selection_rate": lambda: (tp + fp) / (p + n),
        "false_positive_rate": lambda: fp / n,
        "true_positive_rate": lambda: tp / p,
        "accuracy_score": lambda: (tp + n - fp) / (p + n),
    }
    order = np.arange(tp.size)[::-1]
    return metric[x_metric]()[order], metric[y_metric]()[order], order


def upper_hull(x: np.ndarray, y: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The upper convex hull of the points sorted by (x, y) (Andrew's monotone chain, as fairlearn's
    ``_filter_points_to_get_convex_hull``: a middle point on or under the chord is dropped)."""
    order = np.lexsort((y, x))  # stable: equal points keep the order they were met in
    kept: list[int] = []
    for i in order:
        while len(kept) >= 2:
            r0, r1 = kept[-2], kept[-1]
            if (y[r1] - y[r0]) * (x[i] - x[r0]) <= (y[i] - y[r0]) * (x[r1] - x[r0]):
                kept.pop()
            else:
                break
        kept.append(int(i))
    return x[kept], y[kept], k[kept]


def interpolate(hx: np.ndarray, hy: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y on ``grid`` along the hull, the left vertex index and its weight p₀ (fairlearn's ``_interpolate_curve``:
    ``hx[i] < g ≤ hx[i + 1]``, except at the first grid point)."""
    index = np.searchsorted(hx, grid, side="right") - 1
    index[1:] = np.where(grid[1:] == hx[index[1:]], index[1:] - 1, index[1:])
    index = np.clip(index, 0, hx.size - 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p0 = (hx[index + 1] - grid) / (hx[index + 1] - hx[index])
    y = p0 * hy[index] + (1 - p0) * hy[index + 1]
    return y, index, p0


def fit_thresholds(
    groups: list[str],
    positives: np.ndarray,
    negatives: np.ndarray,
    edges: np.ndarray | list[float],
    constraint: str,
    grid_size: int = GRID_SIZE,
) -> ThresholdFit:
    """fairlearn's ``ThresholdOptimizer(constraints=constraint, objective="accuracy_score")`` fitted on binned counts.

    ``positives`` / ``negatives``: labelled rows per (group, score bin), shape (groups, B), the bins split at
    ``edges`` (B − 1 inner edges, ascending). Every group needs a positive and a negative (fairlearn raises
    "Degenerate labels" otherwise): :class:`ValueError` names the group.
    """
    if constraint not in CONSTRAINTS:
        raise ValueError(f"constraint must be one of {', '.join(CONSTRAINTS)}, not {constraint!r}")
    positives, negatives = np.asarray(positives, dtype=float), np.asarray(negatives, dtype=float)
    for g, name in enumerate(groups):
        if positives[g].sum() <= 0 or negatives[g].sum() <= 0:
            raise ValueError(f"group {name} has labels of one class only")
    grid = np.linspace(0, 1, grid_size + 1)
    x_metric, y_metric = (
        ("selection_rate", "accuracy_score")
        if constraint == "demographic_parity"
        else ("false_positive_rate", "true_positive_rate")
    )
    curves = []
    for g in range(len(groups)):
        hx, hy, hk = upper_hull(*tradeoff_points(positives[g], negatives[g], x_metric, y_metric))
        y, index, p0 = interpolate(hx, hy, grid)
        curves.append((y, hk[index], hk[index + 1], p0))
    ys = np.array([c[0] for c in curves])
    if constraint == "demographic_parity":
        weights = (positives.sum(axis=1) + negatives.sum(axis=1)) / (positives.sum() + negatives.sum())
        overall = np.zeros_like(grid)
        for g in sorted(range(len(groups)), key=lambda g: groups[g]):  # summed by group name, as fairlearn's groupby
            overall = overall + weights[g] * ys[g]  # does: ties then break alike whatever order the groups came in
        best = int(np.argmax(overall))
        x_best, y_best = float(grid[best]), float(overall[best])
    else:
        n_pos, n_neg = positives.sum(), negatives.sum()
        lowest = ys.min(axis=0)
        objective = np.around((n_pos * lowest + n_neg * (1 - grid)) / (n_pos + n_neg), 15)
        best = int(np.argmax(objective))
        x_best, y_best = float(grid[best]), float(lowest[best])
    thresholds = bin_thresholds(edges)
    out = []
    for name, (y, k0, k1, p0) in zip(groups, curves, strict=True):
        p_ignore = 0.0
        if constraint == "equalized_odds" and y[best] != grid[best]:
            p_ignore = float((y[best] - y_best) / (y[best] - grid[best]))
        out.append(
            GroupThreshold(
                group=name,
                threshold_0=float(thresholds[k0[best]]),
                p_0=float(p0[best]),
                threshold_1=float(thresholds[k1[best]]),
                p_1=float(1 - p0[best]),
                p_ignore=p_ignore,
                constant=x_best if constraint == "equalized_odds" else 0.0,
                first_bin_0=int(k0[best]),
                first_bin_1=int(k1[best]),
            )
        )
    return ThresholdFit(constraint, x_best, y_best, tuple(out))


def expected_selected(fit: ThresholdFit, positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected true and false positives per group under ``fit``'s rule; ``positives``/``negatives`` of shape
    (..., groups, B) (bootstrap replicates in front), so the rule stays fixed while the counts vary."""
    tp_at, fp_at = selected_counts(positives), selected_counts(negatives)
    p, n = np.asarray(positives).sum(axis=-1), np.asarray(negatives).sum(axis=-1)
    tp, fp = np.zeros(tp_at.shape[:-1]), np.zeros(fp_at.shape[:-1])
    for g, rule in enumerate(fit.groups):
        keep = 1 - rule.p_ignore
        for at, own, total in ((tp_at, tp, p), (fp_at, fp, n)):
            mixed = rule.p_0 * at[..., g, rule.first_bin_0] + rule.p_1 * at[..., g, rule.first_bin_1]
            own[..., g] = keep * mixed + rule.p_ignore * rule.constant * total[..., g]
    return tp, fp
