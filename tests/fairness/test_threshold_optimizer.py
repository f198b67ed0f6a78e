"""The ThresholdOptimizer on binned counts (``stats.threshold_optimizer``) against fairlearn's on rows.

With scores that sit at bin centres fairlearn's thresholds (midpoints between distinct scores) are our bin
edges, so its predicted probabilities (``_pmf_predict``) must equal ours on every row (1e-12). With continuous
scores ours snap to the edges of 0.01 bins: the accuracy after stays within 0.003 of fairlearn's and each
group's expected rates within 0.015 (one bin holds ~1% of a group's rows, and the chosen selection rate / FPR
moves by a few steps of fairlearn's 0.001 grid). Properties (hypothesis): the constrained rates are equal across
groups after, probabilities are probabilities, and the rule applied to rows gives the expected counts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn.postprocessing import ThresholdOptimizer
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, ClassifierMixin

from workbench.stats.threshold_optimizer import CONSTRAINTS, expected_selected, fit_thresholds

BINS = 100
EDGES = np.arange(1, BINS) / BINS


class ScoreColumn(ClassifierMixin, BaseEstimator):
    """A prefit 'estimator' whose prediction is the score column itself."""

    def fit(self, X, y):
        self.fitted_ = True
        return self

    def predict(self, X):
        return np.asarray(X)[:, 0]


def rows(seed: int, n: int = 6000, centred: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    y = (rng.random(n) < np.select([group == "a", group == "b"], [0.3, 0.5], 0.4)).astype(int)
    score = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 1.4 * (2 * y - 1) + 0.5 * (group == "b"))))
    if centred:
        score = (np.clip(np.floor(score * BINS), 0, BINS - 1) + 0.5) / BINS
    return pd.DataFrame({"group": group, "y": y, "score": score})


def binned(frame: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    groups = sorted(frame["group"].unique())
    b = np.clip(np.searchsorted(EDGES, frame["score"].to_numpy(), side="right"), 0, BINS - 1)
    shape = (len(groups), BINS)
    positives, negatives = np.zeros(shape), np.zeros(shape)
    for i, g in enumerate(groups):
        mask = (frame["group"] == g).to_numpy()
        y = frame["y"].to_numpy()[mask]
        positives[i] = np.bincount(b[mask][y == 1], minlength=BINS)
        negatives[i] = np.bincount(b[mask][y == 0], minlength=BINS)
    return groups, positives, negatives


def fairlearn_pmf(frame: pd.DataFrame, constraint: str) -> tuple[np.ndarray, ThresholdOptimizer]:
    X = frame[["score"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fairlearn's "prefit" check on a hand-made estimator
        estimator = ScoreColumn().fit(X, frame["y"])
        model = ThresholdOptimizer(estimator=estimator, constraints=constraint, prefit=True, predict_method="predict")
        model.fit(X, frame["y"], sensitive_features=frame["group"])
        return model._pmf_predict(X, sensitive_features=frame["group"])[:, 1], model


def our_pmf(frame: pd.DataFrame, fit) -> np.ndarray:
    """The exported rule applied to each row: P(predict 1) = (1 − p_ignore)(p₀[s ≥ t₀] + p₁[s ≥ t₁]) + p_ignore·c."""
    out = np.zeros(len(frame))
    score = frame["score"].to_numpy()
    for rule in fit.groups:
        mask = (frame["group"] == rule.group).to_numpy()
        chosen = rule.p_0 * (score[mask] >= rule.threshold_0) + rule.p_1 * (score[mask] >= rule.threshold_1)
        out[mask] = (1 - rule.p_ignore) * chosen + rule.p_ignore * rule.constant
    return out


@pytest.mark.parametrize("constraint", CONSTRAINTS)
@pytest.mark.parametrize("seed", [1, 2])
def test_on_bin_centred_scores_the_predictions_equal_fairlearns_on_every_row(constraint: str, seed: int) -> None:
    frame = rows(seed)
    groups, positives, negatives = binned(frame)
    fit = fit_thresholds(groups, positives, negatives, EDGES, constraint)
    expected, model = fairlearn_pmf(frame, constraint)
    assert np.abs(our_pmf(frame, fit) - expected).max() < 1e-12
    assert fit.x == pytest.approx(model._x_best, abs=1e-12)


@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_on_continuous_scores_the_binned_fit_is_within_a_bin_of_fairlearns(constraint: str) -> None:
    frame = rows(3, n=20_000, centred=False)
    groups, positives, negatives = binned(frame)
    fit = fit_thresholds(groups, positives, negatives, EDGES, constraint)
    expected, _ = fairlearn_pmf(frame, constraint)
    ours = our_pmf(frame, fit)
    y = frame["y"].to_numpy()
    accuracy = lambda p: float(np.mean(np.where(y == 1, p, 1 - p)))  # noqa: E731
    assert accuracy(ours) == pytest.approx(accuracy(expected), abs=0.003)
    for g in groups:
        mask = (frame["group"] == g).to_numpy()
        for part in (mask, mask & (y == 1), mask & (y == 0)):  # selection rate, TPR, FPR
            assert ours[part].mean() == pytest.approx(expected[part].mean(), abs=0.015)


def test_expected_counts_equal_the_rule_applied_to_the_rows() -> None:
    frame = rows(4, centred=False)
    groups, positives, negatives = binned(frame)
    fit = fit_thresholds(groups, positives, negatives, EDGES, "equalized_odds")
    tp, fp = expected_selected(fit, positives, negatives)
    pmf, y = our_pmf(frame, fit), frame["y"].to_numpy()
    for i, g in enumerate(groups):
        mask = (frame["group"] == g).to_numpy()
        assert tp[i] == pytest.approx(pmf[mask & (y == 1)].sum(), abs=1e-9)
        assert fp[i] == pytest.approx(pmf[mask & (y == 0)].sum(), abs=1e-9)


def test_a_group_with_one_class_is_refused_by_name() -> None:
    positives = np.array([[0, 5, 5], [0, 0, 0]], dtype=float)
    negatives = np.array([[5, 5, 0], [3, 2, 1]], dtype=float)
    with pytest.raises(ValueError, match="group b has labels of one class only"):
        fit_thresholds(["a", "b"], positives, negatives, [1 / 3, 2 / 3], "demographic_parity")


counts = st.lists(st.integers(0, 40), min_size=6, max_size=6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(counts, counts), min_size=2, max_size=4), st.sampled_from(CONSTRAINTS))
@example([([0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 4, 0]), ([0] * 6, [0] * 6)], "demographic_parity")  # a flat objective
def test_constrained_rates_are_equal_after_and_probabilities_are_probabilities(groups_counts, constraint) -> None:
    positives = np.array([p for p, _ in groups_counts], dtype=float) + np.eye(len(groups_counts), 6)  # ≥ 1 each
    negatives = np.array([n for _, n in groups_counts], dtype=float) + np.eye(len(groups_counts), 6)[:, ::-1]
    names = [f"g{i}" for i in range(len(groups_counts))]
    fit = fit_thresholds(names, positives, negatives, np.arange(1, 6) / 6, constraint)
    tp, fp = expected_selected(fit, positives, negatives)
    p, n = positives.sum(axis=1), negatives.sum(axis=1)
    for rule in fit.groups:
        assert 0 <= rule.p_0 <= 1 and rule.p_1 == pytest.approx(1 - rule.p_0) and 0 <= rule.p_ignore <= 1 + 1e-12
    if constraint == "demographic_parity":
        assert np.allclose((tp + fp) / (p + n), fit.x, atol=1e-9)
    else:
        assert np.allclose(fp / n, fit.x, atol=1e-9) and np.allclose(tp / p, fit.y, atol=1e-9)
    # the groups listed in another order: the same fit (ties of a flat objective break by group name)
    flipped = fit_thresholds(names[::-1], positives[::-1], negatives[::-1], np.arange(1, 6) / 6, constraint)
    assert flipped.x == pytest.approx(fit.x, abs=1e-12)
