"""The page's results table: one row per comparison, each CI at its own (adjusted) level, compact enough to fit."""

from __future__ import annotations

from workbench.abtest.analyse import analyse_summary
from workbench.abtest.request import ABTestRequest
from workbench.abtest.tables import RESULT_COLUMNS_SHOWN, results_table, shown_columns


def test_holm_gives_each_comparison_its_own_ci_level_in_one_column() -> None:
    rows = [{"arm": "a", "n": 4000, "successes": 1200}, {"arm": "b", "n": 4000, "successes": 1330},
            {"arm": "c", "n": 4000, "successes": 1210}]  # fmt: skip
    result = analyse_summary(rows, ABTestRequest(mode="summary", control="a"))
    table = results_table(result)
    levels = {c.variant: f"{1 - c.ci_level:.1%}" for c in result.comparisons}
    assert table.set_index("variant")["CI level"].to_dict() == levels
    assert len(set(levels.values())) == 2  # Holm: the smaller p is tested at α/2, so its interval is 97.5%
    assert "97.5%" in levels.values() and "95.0%" in levels.values()
    assert {"CI level", "variant"} <= set(shown_columns(table))  # levels differ, two variants: both shown
    assert [c for c in table.columns if c.startswith("CI")] == ["CI level"]  # no column per level, no holes
    b = next(c for c in result.comparisons if c.variant == "b")
    row = table.set_index("variant").loc["b"]
    assert row["difference [CI]"] == f"{b.diff * 100:+.2f} pts [{b.diff_ci[0] * 100:+.2f}, {b.diff_ci[1] * 100:+.2f}]"
    assert row["lift [CI]"] == f"{b.rel_lift:+.1%} [{b.rel_lift_ci[0]:+.1%}, {b.rel_lift_ci[1]:+.1%}]"


def test_one_level_and_no_guardrail_leave_those_columns_out_of_the_page() -> None:
    result = analyse_summary([{"arm": "a", "n": 1000, "successes": 300}, {"arm": "b", "n": 1000, "successes": 340}])
    table = results_table(result)
    hidden = ("variant", "CI level", "guardrail")  # one variant, one level, no guardrail
    assert shown_columns(table) == [c for c in RESULT_COLUMNS_SHOWN if c not in hidden]
    assert set(RESULT_COLUMNS_SHOWN) <= set(table.columns)
