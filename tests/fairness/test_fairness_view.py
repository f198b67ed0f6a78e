"""The Fairness page's group table: which columns the page shows first."""

from __future__ import annotations

import pandas as pd

from workbench.fairness.view import shown_group_columns


def _table(flags: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "group": ["a", "b"], "status": ["reference", "fail"], "n": [10, 12], "labelled": [5, 6],
            "positives": [2, 3], "negatives": [3, 3], "TPR": [0.5, 0.4], "TPR 95% CI": ["[…]", "[…]"],
            "ratio to reference": [None, 0.8], "ratio 95% CI": ["", "[…]"], "adjusted p": [None, 0.01],
            "selection rate": [0.3, 0.2], "FPR": [0.1, 0.3], "flags": flags,
        }
    )  # fmt: skip


def test_the_chosen_rate_and_the_comparison_are_shown_the_other_rates_are_not():
    shown = shown_group_columns(_table(["", "disparity"]), "tpr")
    assert shown == ["group", "status", "n", "labelled", "TPR", "TPR 95% CI", "ratio to reference", "ratio 95% CI",
                     "adjusted p", "flags"]  # fmt: skip


def test_the_flags_column_is_left_out_when_no_group_has_a_flag():
    assert "flags" not in shown_group_columns(_table(["", ""]), "tpr")


def test_interval_columns_are_named_and_explained_at_the_settings_level():
    from types import SimpleNamespace

    from workbench.fairness.view import ci_name, column_help

    assert ci_name(SimpleNamespace(settings={"confidence": 0.9})) == "90% CI"
    assert ci_name(SimpleNamespace(settings={})) == "95% CI"
    assert column_help("FPR 90% CI") == "Wilson interval of the group's FPR"
    assert (
        column_help("ratio 90% CI") == column_help("ratio 95% CI") == "Bootstrap interval of the ratio to the reference"
    )
    assert column_help("99% CI") == "Bootstrap interval" and column_help("change 90% CI").startswith("Bootstrap")
