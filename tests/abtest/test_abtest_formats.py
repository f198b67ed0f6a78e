"""Issue 18, A/B: units everywhere, one format per kind of number (shared by the page's tables and the CLI's
text), lifts said relative, p-values as "< 0.0001", and a cumulative chart whose y axis fits the effect."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from workbench.abtest import charts, formats
from workbench.abtest.analyse import analyse_summary
from workbench.abtest.cli import format_result
from workbench.abtest.request import ABTestRequest
from workbench.abtest.tables import results_table, srm_segments_table


def test_one_format_per_kind():
    assert formats.rate(0.315) == "31.50%"
    assert formats.points(0.0086) == "+0.86 pts" and formats.points(-0.0086, unit=False) == "-0.86"
    assert formats.relative(0.048) == "+4.8%" and formats.relative(0.05, word=True) == "+5.0% relative"
    assert formats.amount(52.3149, "s") == "52.31 s" and formats.amount(0.04817, "stars", signed=True) == "+0.05 stars"
    assert formats.p_value(7.4e-135) == "< 0.0001" and formats.p_value(0.01234) == "0.012"
    assert formats.p_value(None) == "n/a" and formats.p_value(float("nan")) == "n/a"
    assert formats.unit_of("dwell_time") == "s" and formats.unit_of("mean_rating") == "stars"
    assert formats.unit_of("a_file_column") == ""


def _comparison(metric: str, kind: str, **values: float) -> SimpleNamespace:
    base = {"control_mean": 52.3149, "variant_mean": 52.36307, "diff": 0.04817, "diff_ci": (-0.2, 0.29612)}
    return SimpleNamespace(metric=metric, kind=kind, **{**base, **values})


def test_a_mean_carries_its_unit_with_the_same_decimals_in_every_cell():
    dwell = _comparison("dwell_time", "mean")
    assert formats.metric_value(dwell, dwell.control_mean) == "52.31 s"
    assert formats.difference(dwell, dwell.diff) == "+0.05 s"
    assert formats.difference(dwell, dwell.diff_ci[1], unit=False) == "+0.30"
    rate = _comparison("click_rate", "proportion", control_mean=0.3, diff=0.0086)
    assert formats.metric_value(rate, rate.control_mean) == "30.00%"
    assert formats.difference(rate, rate.diff) == "+0.86 pts"


def test_the_results_table_and_the_cli_text_use_the_same_formats():
    rows = [{"arm": "a", "n": 40_000, "successes": 12_000}, {"arm": "b", "n": 40_000, "successes": 16_000}]
    result = analyse_summary(rows, ABTestRequest(mode="summary", control="a"))
    (c,) = result.comparisons
    row = results_table(result).iloc[0]
    assert c.p_adjusted < 1e-100 and row["p adjusted"] == "< 0.0001"  # not 7.4e-135
    assert row["control"] == "30.00%" and row["variant value"] == "40.00%"
    assert row["difference [CI]"].startswith("+10.00 pts [")
    text = format_result(result)
    assert "30.00% → 40.00%; +10.00 pts [" in text and "(+33.3% relative)" in text
    assert "p < 0.0001, adjusted p < 0.0001" in text


def test_srm_segment_p_values_read_as_p_values():
    result = SimpleNamespace(srm=SimpleNamespace(segments=[
        {"segment": "region", "value": "n", "counts": {"a": 10, "b": 12}, "p_value": 3e-9, "p_adjusted": 0.0312,
         "ok": True}]))  # fmt: skip
    row = srm_segments_table(result).iloc[0]
    assert row["p"] == "< 0.0001" and row["p (Holm)"] == "0.031"


def test_the_cumulative_chart_fits_a_one_point_effect():
    """Day 1's fixed-horizon CI is ±20 points; the effect is ~1 point with a final CI of ±0.4: the axis must show
    the effect (before: 2.5 × the widest value, ±50 points)."""
    days = list(range(20))
    half = [0.2 / np.sqrt(d + 1) for d in days]
    diff = [0.01 + 0.002 * np.sin(d) for d in days]
    timeline = SimpleNamespace(
        days=days, diff=diff, ci_low=[d - h for d, h in zip(diff, half, strict=True)],
        ci_high=[d + h for d, h in zip(diff, half, strict=True)], cs_low=[-0.5] * 20, cs_high=[0.5] * 20,
        level=0.05, tuning_n=10_000, variant="b",
    )  # fmt: skip
    fig = charts.cumulative_figure(timeline, "proportion", "click rate")
    low, high = fig.layout.yaxis.range
    assert -10 < low < 0 < 1.2 < high < 12  # points: 0 and the effect in view, far from ±50
    assert low <= min(100 * v for v in timeline.ci_low[5:]) and high >= max(100 * v for v in timeline.ci_high[5:])
    assert "(pts)" in fig.layout.yaxis.title.text
    means = charts.cumulative_figure(timeline, "mean", "dwell time", "s")
    assert "(s)" in means.layout.yaxis.title.text
