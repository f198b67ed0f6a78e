"""Performance from binned aggregates: the confusion matrix and its rates, ROC and PR curves and areas, calibration
(reliability diagram, ECE, Brier), and CBPE's label-free estimates of every metric with NannyML's sampling errors.

Inputs are counts per score bin (equal-width bins of the score in [0, 1]) and prediction, so the
engine sends a few thousand numbers whatever the stream's size.

- ROC AUC from binned scores = the Mann–Whitney U over bins, a positive and a negative in the same
  bin counting ½ (exact when no bin holds both classes with different scores; the error is at most
  ½·Σ_b pos_b·neg_b / (P·N), reported as ``max_error``).
- Confidence-based performance estimation (CBPE, NannyML): with calibrated probabilities c, the
  expected number of correct predictions is Σ c over predicted positives + Σ (1 − c) over predicted
  negatives, and its sampling variance Σ c(1 − c) (independent Bernoulli outcomes). It assumes the
  probability of the label given the score did not change: covariate shift only, no concept drift.
  :func:`expected_confusion` gives CBPE's expected confusion matrix (every metric's estimate is a ratio of it) and
  :func:`sampling_components` NannyML's standard errors (``sampling_error.binary_classification``).
- Model quality (:class:`Confusion`, :func:`binned_curves`, :func:`reliability`, :func:`brier_score`): checked
  against scikit-learn on the rows in ``tests/quality``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.stats.intervals import wilson_interval


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
    The fit is :func:`isotonic_fit`, scikit-learn's ``IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")``
    (held equal by the tests).
    """
    x = np.asarray(mean_score, dtype=float)
    n = np.asarray(labelled, dtype=float)
    keep = (n > 0) & np.isfinite(x)
    knots, fitted = isotonic_fit(x[keep], np.asarray(positives, dtype=float)[keep] / n[keep], n[keep])
    fill = np.where(np.isfinite(x), x, 0.5)
    return np.interp(fill, knots, np.clip(fitted, 0.0, 1.0))  # beyond the knots: the end values (clip)


def isotonic_fit(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct x ascending, the non-decreasing fit at each): weighted least-squares isotonic regression by the
    pool-adjacent-violators algorithm (Barlow, Bartholomew, Bremner & Brunk 1972, "Statistical Inference under
    Order Restrictions"), equal x pooled first into their weighted mean, as scikit-learn's ``IsotonicRegression``.

    A handful of calibration bins: a plain loop, and no import of scikit-learn (with SciPy's statistics it pulls,
    0.8 s of ``check``'s start). Between knots the fit is read by linear interpolation (:func:`isotonic_calibration`).
    """
    x, y, weight = (np.asarray(a, dtype=float) for a in (x, y, weight))
    x, y, weight = x[weight > 0], y[weight > 0], weight[weight > 0]  # as scikit-learn: no weight, no point
    if not x.size:
        raise ValueError("isotonic regression needs at least one point with weight")
    order = np.lexsort((y, x))
    knots, first = np.unique(x[order], return_inverse=True)
    w = np.bincount(first, weights=weight[order])
    mean = np.bincount(first, weights=(y * weight)[order]) / w
    # blocks of pooled knots: (weighted sum, weight, knots in the block); a block below its left neighbour pools
    sums: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for value, mass in zip(mean.tolist(), w.tolist(), strict=True):
        sums.append(value * mass)
        weights.append(mass)
        sizes.append(1)
        while len(sums) > 1 and sums[-2] / weights[-2] > sums[-1] / weights[-1]:
            total, mass_, size = sums.pop(), weights.pop(), sizes.pop()
            sums[-1] += total
            weights[-1] += mass_
            sizes[-1] += size
    fitted = np.repeat(np.array(sums) / np.array(weights), sizes)
    return knots, fitted


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


# --- model quality: the confusion matrix and its rates, curves from binned counts, calibration -------------


@dataclass(frozen=True)
class Confusion:
    """A binary confusion matrix (counts, or expected counts under CBPE) and the rates read from it.

    accuracy = (TP + TN)/n, precision = TP/(TP + FP), recall = TP/(TP + FN), F1 = 2TP/(2TP + FP + FN)
    (scikit-learn's definitions); a rate whose denominator is 0 is NaN (null in the JSON, never a crash).
    """

    tp: float
    fp: float
    fn: float
    tn: float

    @property
    def n(self) -> float:
        return self.tp + self.fp + self.fn + self.tn

    def rates(self) -> dict[str, float]:
        """accuracy, precision, recall and F1 (NaN where a denominator is 0)."""
        return {
            "accuracy": _ratio(self.tp + self.tn, self.n),
            "precision": _ratio(self.tp, self.tp + self.fp),
            "recall": _ratio(self.tp, self.tp + self.fn),
            "f1": _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn),
        }


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


@dataclass(frozen=True)
class Curves:
    """ROC and precision–recall curves from label counts per score bin, with their areas and binning bounds.

    Thresholds are the bins' lower edges, highest first: a point per threshold "predict positive when the
    score's bin is at or above this one". ``roc_auc_max_error`` and ``pr_auc_max_error`` bound the distance
    to the areas computed on the rows (scikit-learn's ``roc_auc_score`` and ``average_precision_score``).
    """

    fpr: np.ndarray
    tpr: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    roc_auc: float
    roc_auc_max_error: float
    pr_auc: float
    pr_auc_max_error: float


def binned_curves(positives: np.ndarray, negatives: np.ndarray) -> Curves:
    """ROC and PR curves, ROC AUC (:func:`binned_auc`) and average precision from counts per bin ordered by score.

    Average precision AP = Σ_b (R_b − R_{b−1})·P_b over bins from the top (scikit-learn's
    ``average_precision_score``: no interpolation; a bin is one threshold, exact when each bin holds one
    distinct score). Within a bin the rows' order is unknown: the precision at its j-th positive with k of
    its negatives ranked above lies between (TP₀ + j)/(A₀ + j + neg_b) and (TP₀ + j)/(A₀ + j) (TP₀, A₀: the
    positives and predictions in higher bins), so |AP_rows − AP_bins| ≤ Σ_b (pos_b/P)·(max − min) over
    j ∈ {1, pos_b}, k ∈ {0, neg_b}. NaN (and NaN bounds) without both classes.
    """
    pos = np.asarray(positives, dtype=float)[::-1]  # highest bin first
    neg = np.asarray(negatives, dtype=float)[::-1]
    total_pos, total_neg = pos.sum(), neg.sum()
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    auc, auc_error = binned_auc(positives, negatives)
    if total_pos == 0 or total_neg == 0:
        empty = np.array([], dtype=float)
        return Curves(empty, empty, empty, empty, float("nan"), float("nan"), float("nan"), float("nan"))
    used = (pos + neg) > 0
    precision = np.where(used, tp / np.where(tp + fp > 0, tp + fp, 1), np.nan)
    recall = tp / total_pos
    ap = float(np.sum(pos[used] * precision[used]) / total_pos)
    tp0, a0 = tp - pos, tp + fp - pos - neg  # positives and predictions in higher bins
    with np.errstate(divide="ignore", invalid="ignore"):
        ends = [(tp0 + j) / (a0 + j + k) for j in (np.minimum(pos, 1), pos) for k in (0 * neg, neg)]
    ends = np.nan_to_num(np.array(ends))  # NaN only where a bin has no positive (its term is 0 anyway)
    hi, lo = ends.max(axis=0), ends.min(axis=0)
    ap_error = float(np.sum(np.where(pos > 0, pos * (hi - lo), 0.0)) / total_pos)
    keep = used
    fpr = np.concatenate([[0.0], fp[keep] / total_neg])
    tpr = np.concatenate([[0.0], tp[keep] / total_pos])
    return Curves(fpr, tpr, recall[keep], precision[keep], auc, auc_error, ap, ap_error)


@dataclass(frozen=True)
class Reliability:
    """Reliability diagram on equal-width score bins: per bin with labels, its mean score, observed positive rate
    with its Wilson interval and labelled count; ECE over those bins and the Brier score."""

    mean_score: np.ndarray
    positive_rate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    labelled: np.ndarray
    ece: float
    brier: float


def reliability(
    sum_score: np.ndarray, positives: np.ndarray, labelled: np.ndarray, brier: float, confidence: float = 0.95
) -> Reliability:
    """The reliability diagram of labelled predictions from per-bin sums (Σ score, positives, count).

    Per bin: mean score Σs/n (scikit-learn's ``calibration_curve`` ``prob_pred``), positive rate (its
    ``prob_true``) with the Wilson interval (:func:`workbench.stats.intervals.wilson_interval`); empty bins
    are left out like scikit-learn does. ECE = Σ_b (n_b/N)·|mean score_b − rate_b| (Guo et al. 2017, "On
    Calibration of Modern Neural Networks"; :func:`calibration_error`). ``brier`` comes from
    :func:`brier_score` (exact sums, no binning).
    """
    n = np.asarray(labelled, dtype=float)
    keep = n > 0
    n = n[keep]
    mean_score = np.asarray(sum_score, dtype=float)[keep] / n
    rate = np.asarray(positives, dtype=float)[keep] / n
    lower, upper = wilson_interval(rate * n, n, confidence)
    return Reliability(mean_score, rate, lower, upper, n, calibration_error(mean_score, rate, n), brier)


def brier_score(sum_score2: float, sum_score_positive: float, positives: float, labelled: float) -> float:
    """Brier score mean (s − y)² over labelled predictions from sums: (Σs² − 2Σs·y + Σy)/n (scikit-learn's
    ``brier_score_loss``; exact, no binning). NaN without labels."""
    if labelled <= 0:
        return float("nan")
    return float((sum_score2 - 2 * sum_score_positive + positives) / labelled)


# --- CBPE for every metric (NannyML's confidence-based performance estimation) ------------------------------


def expected_confusion(
    predicted_positive: np.ndarray, predicted_negative: np.ndarray, probability: np.ndarray
) -> Confusion:
    """CBPE's expected confusion matrix from counts per score bin with the bin's calibrated probability c_b.

    E[TP] = Σ n1_b·c_b, E[FP] = Σ n1_b·(1 − c_b), E[FN] = Σ n0_b·c_b, E[TN] = Σ n0_b·(1 − c_b); the
    estimated precision, recall, F1 and accuracy are its :meth:`Confusion.rates` (NannyML's
    ``estimate_precision``, ``estimate_recall``, ``estimate_f1``: the ratios of the expected counts).
    """
    n1 = np.asarray(predicted_positive, dtype=float)
    n0 = np.asarray(predicted_negative, dtype=float)
    c = np.asarray(probability, dtype=float)
    return Confusion(
        float(np.sum(n1 * c)), float(np.sum(n1 * (1 - c))), float(np.sum(n0 * c)), float(np.sum(n0 * (1 - c)))
    )


@dataclass(frozen=True)
class SamplingComponents:
    """NannyML's sampling-error components from the reference, per metric: (std of the per-row terms, the share
    of rows that carry the metric). The standard error on n rows is std/√(n·share)."""

    components: dict[str, tuple[float, float]]

    def standard_error(self, metric: str, n: float) -> float:
        """std/√(n·share) (NaN when the metric has no component or n is 0)."""
        std, share = self.components.get(metric, (float("nan"), float("nan")))
        return float(std / np.sqrt(n * share)) if n > 0 and share > 0 else float("nan")


def sampling_components(reference: Confusion, positives: np.ndarray, negatives: np.ndarray) -> SamplingComponents:
    """The reference's sampling-error components (NannyML ``sampling_error.binary_classification``).

    accuracy: √(a(1 − a)), share 1; precision: √(p(1 − p)), share of positive predictions; recall:
    √(r(1 − r)), share of actual positives; F1: k·√(q(1 − q)) with q = TP/(TP + FP + FN) and
    k = (TP + FP + FN)/(TP + (FP + FN)/2), share (TP + FP + FN)/n; ROC AUC: over the minority class
    (the classes and scores flipped when positives are the majority), the std of each member's share of
    the other class ranked below it (ties in a bin count ½), share minority/n — the Mann–Whitney form of
    ``auroc_sampling_error_components``, from the label counts per score bin.
    """
    c = reference
    rates = c.rates()
    relevant = c.tp + c.fp + c.fn
    bernoulli = lambda p: float(np.sqrt(p * (1 - p))) if np.isfinite(p) else float("nan")  # noqa: E731
    f1_std = float("nan")
    if relevant > 0 and c.tp + (c.fp + c.fn) / 2 > 0:
        f1_std = relevant / (c.tp + (c.fp + c.fn) / 2) * bernoulli(c.tp / relevant)
    n = c.n if c.n > 0 else float("nan")
    return SamplingComponents(
        {
            "accuracy": (bernoulli(rates["accuracy"]), 1.0),
            "precision": (bernoulli(rates["precision"]), (c.tp + c.fp) / n),
            "recall": (bernoulli(rates["recall"]), (c.tp + c.fn) / n),
            "f1": (f1_std, relevant / n),
            "roc_auc": _auc_component(positives, negatives),
        }
    )


def _auc_component(positives: np.ndarray, negatives: np.ndarray) -> tuple[float, float]:
    pos = np.asarray(positives, dtype=float)
    neg = np.asarray(negatives, dtype=float)
    if pos.sum() == 0 or neg.sum() == 0:
        return float("nan"), float("nan")
    if pos.sum() > neg.sum():  # NannyML flips labels and scores so the minority class is "positive"
        pos, neg = neg[::-1], pos[::-1]
    below = (np.cumsum(neg) - neg + 0.5 * neg) / neg.sum()  # share of the other class ranked below, per bin
    mean = np.sum(pos * below) / pos.sum()
    std = float(np.sqrt(np.sum(pos * (below - mean) ** 2) / pos.sum()))
    return std, float(pos.sum() / (pos.sum() + neg.sum()))
