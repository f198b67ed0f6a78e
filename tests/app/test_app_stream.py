"""AppTest of the Feedback stream page: numbers under the filters, granularities, splits, the triggers section
(edited rules, errors naming the line, backtest, recorded evidence) and live mode keeping the user's choices."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.test_app_home import plotly_values
from tests.conftest import ROOT
from tests.helpers.demo_stores import copy_demo
from tests.helpers.stream_data import START, build
from workbench.demo.scenario import Scenario
from workbench.demo.simulate import simulate
from workbench.sources.evidence import latest_runs
from workbench.sources.store import Store

APP = str(ROOT / "app.py")
# A rule that the 8k-row, 30-day demo can judge: ≈270 predictions a day, about a third labelled.
SMALL_RULES = """
mode = "any"
[[rule]]
name = "volume_floor"
metric = "prediction_volume"
op = "<"
threshold = 1000
for = 2
"""


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    target = tmp_path_factory.mktemp("stream_app") / "workbench.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=8_000, days=30), target)


def open_page(path, monkeypatch) -> AppTest:
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.chdir(ROOT)
    app = AppTest.from_file(APP, default_timeout=90)
    app.run()
    app.switch_page("pages/stream.py").run()
    assert not app.exception, app.exception
    return app


@pytest.fixture()
def page(demo_store, monkeypatch, navigation_app):
    return open_page(demo_store[0].path, monkeypatch)


def metric(app: AppTest, label: str) -> str:
    return {m.label: m.value for m in app.metric}[label]


def charts(app: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in app.get("plotly_chart")]


def test_page_shows_the_whole_stream_with_every_section(page, demo_store):
    _, truth = demo_store
    assert metric(page, "Predictions") == "8,000"
    # feedback on the selected predictions: orphans (no prediction) are counted under signal quality
    assert metric(page, "Feedback rows") == f"{truth['feedback_rows'] - truth['orphan_feedback']:,}"
    assert metric(page, "Orphan feedback") == f"{truth['orphan_feedback']:,}"
    headers = [h.value for h in page.subheader]
    assert headers == ["Triggers", "Over time", "How final are the numbers", "Signal quality", "Trigger backtest"]
    # a table of contents at the top links to each section's anchor
    anchors = [h.proto.anchor for h in page.subheader]
    assert anchors == ["triggers", "over-time", "label-delay", "signal-quality", "trigger-backtest"]
    contents = page.markdown[0].value
    assert all(f"[{h}](#{a})" in contents for h, a in zip(headers, anchors, strict=True))
    assert "8,000 predictions" in " ".join(m.value for m in page.markdown)
    assert len(page.get("plotly_chart")) == 8
    # the volume chart counts every prediction once, and marks where each model version started serving
    volume = charts(page)[0]
    bars = [t for t in volume["data"] if t["type"] == "bar"]
    assert sum(plotly_values(t["y"]).sum() for t in bars) == 8_000
    shapes = " ".join(json.dumps(a) for a in volume["layout"].get("annotations", []))
    assert "v2" in shapes


def test_every_number_respects_the_model_version_filter(page):
    page.sidebar.multiselect(key="versions").select("v2").run()
    assert not page.exception
    predictions = int(metric(page, "Predictions").replace(",", ""))
    assert 0 < predictions < 8_000
    bars = [t for t in charts(page)[0]["data"] if t["type"] == "bar"]
    assert sum(plotly_values(t["y"]).sum() for t in bars) == predictions


@pytest.mark.parametrize("granularity", ["hour", "week"])
def test_other_granularities_render_the_same_total(page, demo_store, granularity):
    page.segmented_control(key="stream_granularity").set_value(granularity).run()
    assert not page.exception
    assert metric(page, "Predictions") == "8,000"
    bars = [t for t in charts(page)[0]["data"] if t["type"] == "bar"]
    buckets = {x for t in bars for x in t["x"]}
    with demo_store[0].connect() as con:  # every bucket from the first prediction's to the last one's, none skipped
        expected = con.execute(
            f"SELECT date_diff('{granularity}', date_trunc('{granularity}', min(ts)), date_trunc('{granularity}', "
            "max(ts))) + 1 FROM predictions"
        ).fetchone()[0]
    assert len(buckets) == expected == {"hour": expected, "week": 5}[granularity] > 700 * (granularity == "hour")
    assert sum(plotly_values(t["y"]).sum() for t in bars) == 8_000


def test_split_by_model_version_draws_one_trace_per_version(page):
    page.selectbox(key="stream_split").set_value("model version").run()
    assert not page.exception
    names = {t.get("name") for t in charts(page)[0]["data"] if t["type"] == "bar"}
    assert names == {"predictions · v1", "predictions · v2"}


def test_edited_rules_are_evaluated_backtested_and_recorded(page, demo_store):
    store, _ = demo_store
    page.text_area(key="stream_rules_text_rules.example.toml").input(SMALL_RULES).run()
    assert not page.exception
    # every complete day has fewer than 1,000 predictions: the rule fires from its 2nd day and still fires
    assert any("Retrain trigger fired" in e.value and "volume_floor" in e.value for e in page.error)
    table = page.dataframe[0].value
    assert list(table["rule"]) == ["volume_floor"] and bool(table["fires"][0])
    backtest = page.dataframe[1].value
    assert len(backtest) == 1 and backtest["buckets"][0] == 28  # 29 complete days, the first has no streak yet
    assert bool(backtest["fires now"][0])
    run = latest_runs(store)["triggers"]
    assert run is not None and run.verdict == "fired" and run.summary["fired"] == ["volume_floor"]


def test_a_bad_rule_is_refused_with_its_line(page):
    page.text_area(key="stream_rules_text_rules.example.toml").input(SMALL_RULES.replace("for = 2", "for = 0")).run()
    assert not page.exception
    assert any("line 8" in e.value and "'for' must be a whole number" in e.value for e in page.error)
    assert len(page.get("plotly_chart")) == 7  # the stream still shows; only the backtest chart is missing


def test_live_mode_refreshes_the_numbers_and_keeps_the_choices(tmp_path, demo_store, monkeypatch, navigation_app):
    copy = Store(tmp_path / "live.duckdb")
    copy.path.write_bytes(demo_store[0].path.read_bytes())
    app = open_page(copy.path, monkeypatch)
    app.segmented_control(key="stream_granularity").set_value("hour").run()
    app.selectbox(key="stream_split").set_value("arm").run()
    app.toggle(key="stream_live").set_value(True).run()
    assert not app.exception
    assert any(c.value.startswith("Live: refreshed") for c in app.caption)
    before = int(metric(app, "Predictions").replace(",", ""))
    report = simulate(copy, rate=500, interval=0.05, seed=3, speed=3600, duration=0.3)
    app.run()  # what the fragment's timer does: re-run with the widgets' state
    assert not app.exception
    assert int(metric(app, "Predictions").replace(",", "")) == before + report.predictions > before
    assert app.segmented_control(key="stream_granularity").value == "hour"
    assert app.selectbox(key="stream_split").value == "arm"
    assert app.toggle(key="stream_live").value is True
    # a range the user ended earlier stays where they put it: new rows do not enter it
    app.sidebar.date_input(key="range").set_value((date(2026, 1, 1), date(2026, 1, 10))).run()
    narrowed = metric(app, "Predictions")
    simulate(copy, rate=500, interval=0.05, seed=4, speed=3600, duration=0.2)
    app.run()
    assert not app.exception and metric(app, "Predictions") == narrowed
    assert app.sidebar.date_input(key="range").value == (date(2026, 1, 1), date(2026, 1, 10))


# A rules set with a rule that cannot be evaluated on the demo store (it has no column "planet") and one that can.
BROKEN_RULES = (
    SMALL_RULES
    + """
[[rule]]
name = "fpr_gap"
metric = "fairness_ratio"
attribute = "planet"
window = "week"
op = ">"
threshold = 1.25
"""
)


def test_a_rule_in_error_shows_its_reason_and_the_others_still_decide(page):
    page.text_area(key="stream_rules_text_rules.example.toml").input(BROKEN_RULES).run()
    assert not page.exception
    # the working rule still fires and decides the set; the broken one names itself, its line and why
    assert any("Retrain trigger fired" in e.value and "volume_floor" in e.value for e in page.error)
    assert any("fpr_gap (line 10)" in w.value and "planet" in w.value for w in page.warning)
    table = page.dataframe[0].value.set_index("rule")
    assert list(table.index) == ["volume_floor", "fpr_gap"]
    assert bool(table.loc["volume_floor", "fires"]) and pd.isna(table.loc["volume_floor", "error"])
    assert table.loc["fpr_gap", "value now"] == "error" and "planet" in table.loc["fpr_gap", "error"]
    assert pd.isna(table.loc["fpr_gap", "fires"])  # neither fired nor quiet: unknown
    assert "Trigger backtest" in [h.value for h in page.subheader] and len(page.get("plotly_chart")) == 8


def test_every_trigger_column_says_what_it_means(page):
    config = json.loads(page.dataframe[0].proto.columns)
    table = page.dataframe[0].value
    for column in table.columns:  # every header has a help text (the hover tooltip)
        assert config[column].get("help"), column
    assert "labels_settled" in config["pending"]["help"] and "PSI" in config["driven by"]["help"]
    assert config["driven by"]["width"] == "large"  # cut off before: wide enough for "tenure_days 4.25, …"
    backtest = json.loads(page.dataframe[1].proto.columns)
    assert all(backtest[c].get("help") for c in page.dataframe[1].value.columns)


def test_home_and_stream_numbers_reconcile(demo_store, monkeypatch, navigation_app):
    _, truth = demo_store
    page = open_page(demo_store[0].path, monkeypatch)
    page.switch_page("pages/home.py").run()
    home = {m.label: m for m in page.metric}
    page.switch_page("pages/stream.py").run()
    stream = {m.label: m for m in page.metric}
    count = lambda m: int(m.value.replace(",", ""))  # noqa: E731
    # feedback: Home counts every row of the store, the stream page the rows on predictions; the gap is the orphans
    assert truth["orphan_feedback"] > 0
    orphans = count(stream["Orphan feedback"])
    assert count(home["Feedback rows"]) == count(stream["Feedback rows"]) + orphans == truth["feedback_rows"]
    assert f"{orphans:,} orphans" in home["Feedback rows"].help
    assert f"{orphans:,} orphan feedback rows" in stream["Feedback rows"].help
    assert home["With any feedback"].value == stream["With any feedback"].value
    # labels: Home counts any type, the stream page its "Labels from" choice (automated outcomes by default)
    (outcome,) = [label for label in stream if label.startswith("Labelled (")]
    assert outcome == "Labelled (outcome)" and "Labels from" in stream[outcome].help
    percent = lambda m: float(m.value.rstrip("%"))  # noqa: E731
    assert percent(stream[outcome]) < percent(home["Labelled (any type)"])
    every = page.multiselect(key="stream_labels").options
    page.multiselect(key="stream_labels").set_value(every).run()
    assert not page.exception
    assert {m.label: m.value for m in page.metric}["Labelled (any type)"] == home["Labelled (any type)"].value


@pytest.fixture(scope="module")
def predictions_only(tmp_path_factory):
    """Two model versions over six days, and not a single feedback row."""
    rows = [
        {"trace_id": f"t{i}", "ts": START + pd.Timedelta(hours=2 * i), "model_version": "v1" if i < 40 else "v2",
         "prediction": i % 2}
        for i in range(72)
    ]  # fmt: skip
    return build(tmp_path_factory.mktemp("no_feedback") / "workbench.duckdb", rows)


def nan_only(trace: dict) -> bool:
    """A trace with values of which none is a finite number (draws nothing; the browser logs 'MNaN' paths)."""
    values = trace.get("y")
    if values is None:
        return False
    array = pd.to_numeric(pd.Series(plotly_values(values), dtype=object), errors="coerce").to_numpy(float)
    return len(array) > 0 and not np.isfinite(array).any()


def test_a_store_without_feedback_says_so_instead_of_empty_charts(predictions_only, monkeypatch, navigation_app):
    page = open_page(predictions_only.path, monkeypatch)
    assert metric(page, "Predictions") == "72" and metric(page, "Feedback rows") == "0"
    assert sum("No feedback yet" in i.value for i in page.info) == 2  # over time, and how final the numbers are
    for chart in charts(page):
        assert not [t.get("name") for t in chart["data"] if nan_only(t)], chart["layout"].get("title")
        # version marks (dates) only on a chart with data: on empty axes they sit on a numeric -1…6 axis
        if chart["layout"].get("shapes"):
            assert chart["data"], chart["layout"].get("title")
    titles = [c["layout"]["title"]["text"] for c in charts(page)]
    assert titles[0].startswith("Predictions per day") and not any(t.startswith("Label delay") for t in titles)
    quality = next(c for c in charts(page) if c["layout"]["title"]["text"].startswith("Signal quality"))
    assert not quality["data"] and "No quarantined" in quality["layout"]["annotations"][0]["text"]
