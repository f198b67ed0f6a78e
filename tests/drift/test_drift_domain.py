"""The domain classifier (the permuted copies scored in one predict_proba call) equals the plain sklearn loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from workbench.stats.domain import domain_classifier, rank_auc


def _frames(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def frame(n: int, shift: float, new_level: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "a": rng.normal(shift, 1, n),
                "b": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(0, 1, n)),
                "c": rng.choice(["x", "y", "z", "new"], n, p=[0.4 - new_level, 0.3, 0.3, new_level]),
            }
        )

    return frame(700, 0.0, 0.0), frame(500, 0.4, 0.1)


def _plain(reference: pd.DataFrame, current: pd.DataFrame, folds: int, seed: int) -> tuple[float, dict[str, float]]:
    """Out-of-fold AUC and first-fold permutation drops by a sequential loop, one predict_proba per feature."""
    codes = {v: i for i, v in enumerate(sorted(set(reference.c) | set(current.c)))}
    frame = pd.concat([reference, current], ignore_index=True)
    x = np.column_stack([frame.a, frame.b, frame.c.map(codes).to_numpy(dtype=float)])
    y = np.concatenate([np.zeros(len(reference)), np.ones(len(current))])
    oof, drops, rng = np.zeros(len(y)), {}, np.random.default_rng(seed)
    for k, (train, test) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y)):
        model = HistGradientBoostingClassifier(
            max_iter=60, max_leaf_nodes=15, early_stopping=False, random_state=seed,
            categorical_features=np.array([False, False, True]),
        ).fit(x[train], y[train])  # fmt: skip
        oof[test] = model.predict_proba(x[test])[:, 1]
        if k == 0:
            base = roc_auc_score(y[test], oof[test])
            for j, name in enumerate("abc"):
                shuffled = x[test].copy()
                shuffled[:, j] = shuffled[rng.permutation(len(test)), j]
                drops[name] = base - roc_auc_score(y[test], model.predict_proba(shuffled)[:, 1])
    return roc_auc_score(y, oof), drops


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_the_domain_classifier_equals_the_sequential_sklearn_loop(folds):
    reference, current = _frames(folds)
    result = domain_classifier(reference, current, ["a", "b"], ["c"], folds=folds, seed=7)
    auc, drops = _plain(reference, current, folds, seed=7)
    assert result.auc == pytest.approx(auc, abs=1e-15)
    assert {r["feature"]: r["auc_drop"] for r in result.importance} == pytest.approx(drops, abs=1e-15)
    assert result.drift and result.importance[0]["feature"] in ("a", "c")


@given(
    labels=st.lists(st.booleans(), min_size=2, max_size=60).filter(lambda v: 0 < sum(v) < len(v)),
    data=st.data(),
)
@settings(max_examples=200, deadline=None)
def test_rank_auc_equals_sklearns_roc_auc_with_ties(labels, data):
    y = np.array(labels, dtype=float)
    # scores from a few levels: many ties, as a classifier's leaves give
    rows = [data.draw(st.lists(st.sampled_from([0.1, 0.25, 0.5, 0.9]), min_size=len(y), max_size=len(y)))
            for _ in range(3)]  # fmt: skip
    scores = np.array(rows)
    ours = rank_auc(y, scores)
    for row, value in zip(scores, ours, strict=True):
        assert value == pytest.approx(roc_auc_score(y, row), abs=1e-15)
