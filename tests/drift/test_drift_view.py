"""The Drift page's statistics table: which columns the page shows first."""

from __future__ import annotations

import pandas as pd

from workbench.drift.view import shown_feature_columns


def _table(**changes: list) -> pd.DataFrame:
    base = {
        "feature": ["a", "b"], "type": ["numeric", "categorical"], "drift": [True, False],
        "decided by": ["psi", "psi"], "PSI": [0.3, 0.01], "JS distance": [0.2, 0.01], "Wasserstein / σ": [0.4, None],
        "test": ["ks", "chi2"], "statistic": [0.2, 3.1], "p-value": [1e-9, 0.4], "p (BH)": [2e-9, 0.4],
        "KS": ["grid", None], "n reference": [100, 100], "n current": [90, 90], "missing ref": [0.0, 0.01],
        "missing cur": [0.0, 0.2], "unseen categories": ["", ""],
    }  # fmt: skip
    return pd.DataFrame({**base, **changes})


def test_uniform_and_implied_columns_are_left_to_the_caption():
    shown = shown_feature_columns(_table(), "psi")
    assert shown == ["feature", "type", "drift", "PSI", "JS distance", "Wasserstein / σ", "statistic", "p-value",
                     "p (BH)", "n reference", "n current", "missing ref", "missing cur"]  # fmt: skip


def test_columns_that_vary_are_shown():
    shown = shown_feature_columns(
        _table(**{"decided by": ["psi", "p_value"], "test": ["ks", "ks"], "unseen categories": ["", "z"]}), "psi"
    )
    assert {"decided by", "test", "unseen categories"} <= set(shown)
    assert "KS" not in shown  # one KS method (the categorical feature has none)


def test_a_verdict_not_by_the_runs_rule_keeps_its_reason():
    """Drift by the missing share (PSI tiny) must not read as a PSI verdict: the column stays, even when uniform."""
    one = _table(**{"decided by": ["missing", "missing"]})
    assert "decided by" in shown_feature_columns(one, "psi")
    assert "decided by" not in shown_feature_columns(_table(**{"decided by": ["p_value"] * 2}), "p_value")
