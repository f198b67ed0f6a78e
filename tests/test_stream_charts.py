"""Stream charts draw what the snapshot says: Wilson bands that never bridge an empty bucket, hour charts that
open on the newest week, signal-quality lines zero-filled between events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.charts.stream import HOURS_SHOWN, _band, quality_figure, rate_figure
from workbench.demo import Scenario, build_demo
from workbench.queries.stream_view import stream_snapshot
from workbench.store import Store


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
    from workbench.charts.stream import volume_figure
    from workbench.triggers import check, parse

    rules = '[[rule]]\nname = "low"\nmetric = "prediction_volume"\nop = "<"\nthreshold = 1000\nfor = 2\n'
    result = check(store, parse(rules))
    (rule,) = result.rules
    day = volume_figure(stream_snapshot(store, None, "day", None, ("outcome",)), result)
    (markers,) = [t for t in day.data if t.name == "low fires"]
    assert len(markers.x) == len(rule.fired_buckets) == 18  # 19 complete days; the first starts the streak
    hour = volume_figure(stream_snapshot(store, None, "hour", None, ("outcome",)), result)
    assert not [t for t in hour.data if t.name == "low fires"]
