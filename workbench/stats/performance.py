"""Performance from binned aggregates: realised accuracy and ROC AUC, calibration, and the CBPE estimate.

Inputs are counts per score bin (equal-width bins of the score in [0, 1]) and prediction, so the
engine sends a few thousand numbers whatever the stream's size.

- ROC AUC from binned scores = the Mann–Whitney U over bins, a positive and a negative in the same
  bin counting ½ (exact when no bin holds both classes with different scores; the error is at most
  ½·Σ_b pos_b·neg_b / (P·N), reported as ``max_error``).
- Confidence-based performance estimation (CBPE, NannyML): with calibrated probabilities c, the
  expected number of correct predictions is Σ c over predicted positives + Σ (1 − c) over predicted
  negatives, and its sampling variance Σ c(1 − c) (independent Bernoulli outcomes). It assumes the
  probability of the label given the score did not change: covariate shift only, no concept drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def binned_auc(positives: np.ndarray, negatives: np.ndarray) -> tuple[float, float]:
    """(ROC AUC, bound of its binning error) from label counts per score bin ordered by score.

    AUC = Σ_b neg_b·(positives in higher bins + ½·pos_b) / (P·N) (Mann–Whitney; = sklearn's
    ``roc_auc_score`` when each bin holds one distinct score). NaN when a class is absent.
    """
    pos = np.asarray(positives, dtype=float)
    neg = np.asarray(negatives, dtype=float)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        return float("nan"), float("nan")
    higher = total_pos - np.cumsum(pos)  # positives in bins above b
    u = np.sum(neg * (higher + 0.5 * pos))
    return float(u / (total_pos * total_neg)), float(0.5 * np.sum(pos * neg) / (total_pos * total_neg))


def calibration_error(mean_score: np.ndarray, positive_rate: np.ndarray, weights: np.ndarray) -> float:
    """Expected calibration error Σ_b w_b |mean score_b − positive rate_b| / Σ w (bins with labels only)."""
    w = np.asarray(weights, dtype=float)
    keep = w > 0
    if not keep.any():
        return float("nan")
    gap = np.abs(np.asarray(mean_score, dtype=float)[keep] - np.asarray(positive_rate, dtype=float)[keep])
    return float(np.sum(w[keep] * gap) / w[keep].sum())


def equal_frequency_calibration_error(
    probability: np.ndarray, positives: np.ndarray, labelled: np.ndarray, bins: int = 10
) -> float:
    """Expected calibration error on ``bins`` equal-frequency bins of labelled predictions (NannyML's ECE).

    Inputs are per fine score bin (ordered by score, so a monotone calibration keeps the order): its
    probability, labelled count and positives. The fine bins are sorted by probability and cut where
    the cumulative labelled count crosses k/bins of the total (a fine bin is not split, so the bins
    are equal up to one fine bin); ECE = Σ_b (n_b/N)·|mean probability_b − positive rate_b|. With one
    row per fine bin and N divisible by ``bins`` this is NannyML's ``_get_ece`` (equal-count bins of
    the sorted predictions). Equal-frequency bins keep every bin's rate precise: on equal-width bins
    most of the 100 bins hold a handful of labels, and their sampling noise, not miscalibration,
    dominates the ECE (Nixon et al. 2019, "Measuring Calibration in Deep Learning", adaptive ECE).
    NaN without labels.
    """
    c = np.asarray(probability, dtype=float)
    n = np.asarray(labelled, dtype=float)
    x = np.asarray(positives, dtype=float)
    keep = n > 0
    if not keep.any():
        return float("nan")
    c, n, x = c[keep], n[keep], x[keep]
    order = np.argsort(c, kind="stable")
    c, n, x = c[order], n[order], x[order]
    total = n.sum()
    before = np.cumsum(n) - n  # labelled rows in earlier fine bins
    index = np.minimum((before * bins // total).astype(int), bins - 1)
    count = np.bincount(index, weights=n, minlength=bins)
    mean_c = np.bincount(index, weights=n * c, minlength=bins)
    rate = np.bincount(index, weights=x, minlength=bins)
    used = count > 0
    return float(np.sum(np.abs(mean_c[used] - rate[used])) / total)


def isotonic_calibration(mean_score: np.ndarray, positives: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """Calibrated probability per bin: isotonic regression of the positive rate on the bin's mean score.

    Weighted by the labelled count of each bin (equal to fitting the rows themselves when every row
    of a bin has the bin's score); bins without labels get the fit's interpolation (clipped to [0, 1]).
    """
    from sklearn.isotonic import IsotonicRegression

    x = np.asarray(mean_score, dtype=float)
    n = np.asarray(labelled, dtype=float)
    keep = (n > 0) & np.isfinite(x)
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    model.fit(x[keep], np.asarray(positives, dtype=float)[keep] / n[keep], sample_weight=n[keep])
    fill = np.where(np.isfinite(x), x, 0.5)
    return model.predict(fill)


@dataclass(frozen=True)
class ExpectedAccuracy:
    """CBPE accuracy of one chunk: expected value, its sampling std, expected ROC AUC."""

    accuracy: float
    std: float
    auc: float


def expected_accuracy(
    predicted_positive: np.ndarray, predicted_negative: np.ndarray, probability: np.ndarray
) -> ExpectedAccuracy:
    """CBPE from counts per score bin with the bin's calibrated probability c_b.

    E[correct] = Σ_b (n1_b·c_b + n0_b·(1 − c_b)), Var = Σ_b (n1_b + n0_b)·c_b(1 − c_b);
    accuracy = E/n, std = √Var/n. Expected AUC: :func:`binned_auc` on the expected label counts
    (n_b·c_b positives, n_b·(1 − c_b) negatives).
    """
    n1 = np.asarray(predicted_positive, dtype=float)
    n0 = np.asarray(predicted_negative, dtype=float)
    c = np.asarray(probability, dtype=float)
    n = n1.sum() + n0.sum()
    if n == 0:
        return ExpectedAccuracy(float("nan"), float("nan"), float("nan"))
    expected = np.sum(n1 * c + n0 * (1 - c))
    variance = np.sum((n1 + n0) * c * (1 - c))
    auc, _ = binned_auc((n1 + n0) * c, (n1 + n0) * (1 - c))
    return ExpectedAccuracy(float(expected / n), float(np.sqrt(variance) / n), auc)


def raw_expected_accuracy(
    n_positive: float, sum_score_positive: float, n_negative: float, sum_score_negative: float, sum_var: float
) -> tuple[float, float]:
    """CBPE with the scores taken as probabilities (no calibration), exact from sums over rows.

    E[correct] = Σ_{ŷ=1} s + Σ_{ŷ=0} (1 − s); Var = Σ s(1 − s) = ``sum_var`` (Σ s − Σ s²).
    """
    n = n_positive + n_negative
    if n == 0:
        return float("nan"), float("nan")
    expected = sum_score_positive + (n_negative - sum_score_negative)
    return float(expected / n), float(np.sqrt(max(sum_var, 0.0)) / n)
