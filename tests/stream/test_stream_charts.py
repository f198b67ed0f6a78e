"""Stream charts draw what the snapshot says: Wilson bands that never bridge an empty bucket, hour charts that
open on the newest week, signal-quality lines zero-filled between events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.helpers.stream_data import START, build
from workbench.demo.scenario import Scenario, build_demo
from workbench.sources.store import Store
from workbench.stream.charts import (
    HOURS_SHOWN,
    _band,
    arrivals_figure,
    backtest_figure,
    coverage_figure,
    delay_figure,
    quality_figure,
    rate_figure,
    volume_figure,
)
from workbench.stream.snapshot import PARTIAL_BELOW, observed_share, stream_snapshot
from workbench.stream.triggers import check, parse


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("charts") / "workbench.duckdb")
    build_demo(store, Scenario(rows=4_000, days=20))
    return store


def test_a_band_is_one_polygon_per_run_of_buckets_with_an_interval():
    x = pd.date_range("2026-01-01", periods=6, freq="D")
    lower = pd.Series([0.1, 0.2, np.nan, 0.3, np.nan, 0.4])
    upper = pd.Series([0.5, 0.6, np.nan, 0.7, np.nan, 0.8])
    band_x, band_y = _band(x, lower, upper)
    runs = [i for i, v in enumerate(band_x) if v is None]
    assert len(runs) == 3  # [0, 1], [3], [5]: never across the empty buckets 2 and 4
    assert band_x[:5] == [x[0], x[1], x[1], x[0], None]
    assert band_y[:5] == [0.5, 0.6, 0.2, 0.1, None]


def test_hour_charts_open_on_the_newest_week(store):
    snapshot = stream_snapshot(store, None, "hour", None, ("outcome",))
    fig = rate_figure(snapshot, "accuracy")
    start, end = (pd.Timestamp(v) for v in fig.layout.xaxis.range)
    newest = snapshot.series["bucket"].max().tz_localize(None)
    assert end == newest + pd.Timedelta(hours=1) and end - start == HOURS_SHOWN
    day = rate_figure(stream_snapshot(store, None, "day", None, ("outcome",)), "accuracy")
    assert day.layout.xaxis.range is None


def test_signal_quality_lines_are_zero_between_events(store):
    snapshot = stream_snapshot(store, None, "day", None, ("outcome",))
    fig = quality_figure(snapshot)
    (conflicts,) = [t for t in fig.data if t.name == "traces with conflicting labels"]
    assert len(conflicts.x) >= 20  # every day of the stream, not only the days with a conflict
    expected = snapshot.quality.conflicts.groupby("bucket")["conflicting"].sum()
    y = pd.Series(conflicts.y, index=pd.to_datetime(conflicts.x))
    assert y.sum() == expected.sum() > 0 and (y == 0).sum() >= len(y) - len(expected)


def test_fired_markers_sit_on_charts_of_their_own_granularity(store):
    from workbench.stream.charts import volume_figure
    from workbench.stream.triggers import check, parse

    rules = '[[rule]]\nname = "low"\nmetric = "prediction_volume"\nop = "<"\nthreshold = 1000\nfor = 2\n'
    result = check(store, parse(rules))
    (rule,) = result.rules
    day = volume_figure(stream_snapshot(store, None, "day", None, ("outcome",)), result)
    (markers,) = [t for t in day.data if t.name == "low fires"]
    assert len(markers.x) == len(rule.fired_buckets) == 18  # 19 complete days; the first starts the streak
    hour = volume_figure(stream_snapshot(store, None, "hour", None, ("outcome",)), result)
    assert not [t for t in hour.data if t.name == "low fires"]


def test_observed_share_is_the_part_of_each_bucket_inside_the_stream_span():
    weeks = pd.Series(pd.date_range("2025-12-29", "2026-03-30", freq="7D", tz="UTC"))
    first, last = pd.Timestamp("2026-01-01 00:58", tz="UTC"), pd.Timestamp("2026-03-31 23:59:59", tz="UTC")
    share = observed_share(weeks, "week", first, last)
    assert share.iloc[0] == pytest.approx((4 * 24 * 60 - 58) / (7 * 24 * 60), abs=1e-12)  # Thu 00:58 → Mon
    assert share.iloc[-1] == pytest.approx((2 * 86400 - 1) / (7 * 86400), abs=1e-12)  # Mon → Tue 23:59:59
    assert (share.iloc[1:-1] == 1.0).all()
    days = pd.Series(pd.date_range("2026-03-30", periods=2, freq="D", tz="UTC"))
    live = observed_share(days, "day", pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-03-31 12:00", tz="UTC"))
    assert live.tolist() == [1.0, 0.5]  # today, half over
    assert observed_share(days, "day", None, None).tolist() == [1.0, 1.0]


def test_partial_weeks_are_hatched_and_say_how_much_was_observed(store):
    snapshot = stream_snapshot(store, None, "week", None, ("outcome",))
    overall = snapshot.overall()
    partial = overall["observed"] < PARTIAL_BELOW
    assert partial.iloc[-1] or partial.iloc[0]  # a 20-day demo cannot fill whole weeks at both ends
    fig = volume_figure(snapshot)
    shapes = list(fig.data[0].marker.pattern.shape)
    assert shapes == ["/" if p else "" for p in partial]
    note = " ".join(a.text for a in fig.layout.annotations if a.text.startswith("hatched"))
    first_partial = overall[partial].iloc[0]
    assert f"{first_partial['observed']:.0%}" in note
    arrivals = arrivals_figure(snapshot)
    first, last = snapshot.arrivals["first"].min(), snapshot.arrivals["last"].max()
    for bar in arrivals.data:  # each kind's bars: hatched where the arrivals cover part of the week
        expected = observed_share(pd.Series(pd.to_datetime(bar.x, utc=True)), "week", first, last) < PARTIAL_BELOW
        assert list(bar.marker.pattern.shape) == ["/" if p else "" for p in expected]
    assert any(a.text.startswith("hatched") for a in arrivals.layout.annotations)
    days = stream_snapshot(store, None, "day", None, ("outcome",))
    day_shapes = list(volume_figure(days).data[0].marker.pattern.shape)
    assert day_shapes == ["/" if o < PARTIAL_BELOW else "" for o in days.overall()["observed"]]
    assert day_shapes.count("/") < partial.sum() + 2  # days are whole but for the stream's edges


def finite_values(trace) -> bool:
    return bool(np.isfinite(pd.to_numeric(pd.Series(trace.y, dtype=object), errors="coerce").to_numpy(float)).any())


def test_charts_with_nothing_to_draw_say_why_instead_of_drawing_nan(tmp_path):
    """Predictions and no feedback: no chart carries a NaN-only trace or date marks on empty axes."""
    rows = [{"trace_id": f"t{i}", "ts": START + pd.Timedelta(hours=3 * i), "model_version": "v1" if i < 20 else "v2",
             "prediction": i % 2} for i in range(48)]  # fmt: skip
    store = build(tmp_path / "s.duckdb", rows)
    snapshot = stream_snapshot(store, None, "day", None, ())
    result = check(store, parse(BACKTEST_RULES))
    figures = {
        "volume": volume_figure(snapshot, result),
        "arrivals": arrivals_figure(snapshot, "kind", result),
        "accuracy": rate_figure(snapshot, "accuracy", result),
        "thumbs": rate_figure(snapshot, "thumbs_up_rate", result),
        "clicks": rate_figure(snapshot, "click_through_rate", result),
        "coverage": coverage_figure(snapshot, result),
        "delay": delay_figure(snapshot),
        "quality": quality_figure(snapshot),
        "backtest": backtest_figure(result),
    }
    for name, fig in figures.items():
        assert all(finite_values(t) for t in fig.data if t.y is not None and len(t.y)), name
        assert not fig.layout.shapes or fig.data, name  # no version marks on axes without data
    for name in ("arrivals", "accuracy", "thumbs", "clicks", "delay", "quality"):
        (note,) = figures[name].layout.annotations
        assert not figures[name].data and note.text.startswith("No "), name
    assert "No thumbs yet" in figures["thumbs"].layout.annotations[0].text
    # the backtest: the rule with values draws them, the rule without any and the rule in error say why
    texts = [a.text for a in figures["backtest"].layout.annotations]
    assert any(t.startswith("error: no column 'planet'") for t in texts)
    assert any(t.startswith("no value in any bucket (") for t in texts)
    # in paper coordinates: a reference to an empty panel's axis made Plotly autorange the shared x axis from 1970
    assert {(a.xref, a.yref) for a in figures["backtest"].layout.annotations} == {("paper", "paper")}
    assert {t.name for t in figures["backtest"].data} >= {"volume (all buckets)", "volume (judged)"}


BACKTEST_RULES = """
[[rule]]
name = "volume"
metric = "prediction_volume"
op = "<"
threshold = 1
[[rule]]
name = "accuracy"
metric = "online_accuracy"
op = "<"
threshold = 0.5
[[rule]]
name = "gap"
metric = "fairness_ratio"
attribute = "planet"
window = "day"
op = ">"
threshold = 1.25
"""


def test_the_band_and_the_sentence_name_the_settings_confidence(store):
    from workbench.stream.snapshot import StreamSettings

    snapshot = stream_snapshot(store, None, "day", None, ("outcome",), StreamSettings(confidence=0.9))
    assert snapshot.confidence == 0.9
    assert "(band: 90% Wilson interval)" in rate_figure(snapshot, "accuracy").layout.title.text
    assert "(90% CI " in snapshot.verdict() and "95% CI" not in snapshot.verdict()
