"""Performance from binned aggregates: ROC AUC vs sklearn, CBPE by hand, calibration, Hanley–McNeil CI."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from workbench.stats.domain import auc_ci
from workbench.stats.performance import (
    binned_auc,
    calibration_error,
    expected_accuracy,
    isotonic_calibration,
    raw_expected_accuracy,
)

RNG = np.random.default_rng(7)


def test_binned_auc_equals_sklearn_when_each_bin_holds_one_score():
    scores = RNG.integers(0, 50, 4000)  # 50 distinct scores → one per bin, ties within a bin count ½ like sklearn
    labels = (RNG.random(4000) < scores / 60).astype(int)
    pos = np.bincount(scores[labels == 1], minlength=50)
    neg = np.bincount(scores[labels == 0], minlength=50)
    auc, bound = binned_auc(pos, neg)
    assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert bound >= 0


def test_binned_auc_is_within_its_bound_for_continuous_scores():
    scores = RNG.random(20_000)
    labels = (RNG.random(20_000) < scores).astype(int)
    index = np.minimum((scores * 1000).astype(int), 999)
    auc, bound = binned_auc(
        np.bincount(index[labels == 1], minlength=1000), np.bincount(index[labels == 0], minlength=1000)
    )
    assert abs(auc - roc_auc_score(labels, scores)) <= bound + 1e-12
    assert bound < 0.001


def test_binned_auc_without_one_class_is_nan():
    assert np.isnan(binned_auc([0, 0], [3, 4])[0])


def test_cbpe_expected_accuracy_by_hand():
    n1, n0, c = np.array([10.0, 30.0]), np.array([40.0, 20.0]), np.array([0.2, 0.7])
    est = expected_accuracy(n1, n0, c)
    expected = (10 * 0.2 + 30 * 0.7 + 40 * 0.8 + 20 * 0.3) / 100
    assert est.accuracy == pytest.approx(expected, abs=1e-12)
    assert est.std == pytest.approx(np.sqrt(50 * 0.2 * 0.8 + 50 * 0.7 * 0.3) / 100, abs=1e-12)


def test_cbpe_matches_realised_accuracy_on_average_when_calibrated():
    p = RNG.random(200_000)
    y = RNG.random(200_000) < p
    pred = p >= 0.5
    realised = np.mean(pred == y)
    estimate, std = raw_expected_accuracy(pred.sum(), p[pred].sum(), (~pred).sum(), p[~pred].sum(), np.sum(p - p**2))
    assert abs(estimate - realised) <= 3 * std


def test_isotonic_calibration_is_monotone_and_lowers_the_error_of_a_miscalibrated_score():
    true_p = np.linspace(0.05, 0.95, 20)
    mean_score = true_p**2  # overconfident-low scores
    labelled = np.full(20, 1000.0)
    positives = np.round(true_p * labelled)
    mapped = isotonic_calibration(mean_score, positives, labelled)
    assert np.all(np.diff(mapped) >= 0)
    rate = positives / labelled
    assert calibration_error(mapped, rate, labelled) < calibration_error(mean_score, rate, labelled)


def test_hanley_mcneil_interval_by_hand():
    a, n1, n2 = 0.8, 100, 150
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2))
    lower, upper = auc_ci(a, n1, n2)
    assert lower == pytest.approx(a - 1.959963984540054 * se, abs=1e-12)
    assert upper == pytest.approx(a + 1.959963984540054 * se, abs=1e-12)
