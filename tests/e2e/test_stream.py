"""Browser walk of the Feedback stream page: the main path, then live mode while `workbench simulate` writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import duckdb
import pandas as pd
import pytest

from tests.e2e.conftest import ROOT, screenshot, serve, wait_for_app
from tests.helpers.stream_data import START, build

pytestmark = pytest.mark.e2e


def metric_value(page: object, label: str) -> str:
    """The shown value of the st.metric whose label is ``label``."""
    card = page.locator("[data-testid=stMetric]").filter(has_text=label).first
    return card.locator("[data-testid=stMetricValue]").inner_text().strip()


def granularity(page: object, name: str) -> object:
    """The segmented-control button of a granularity."""
    return page.get_by_role("radiogroup", name="Granularity").get_by_role("radio", name=name, exact=True)


def test_stream_page_shows_the_stream_triggers_and_backtest(page, app_url):
    page.goto(f"{app_url}/stream")
    wait_for_app(page, timeout_ms=120_000)
    # the last section is drawn once the rules ran (the first visit computes drift, CBPE and fairness series)
    page.get_by_role("heading", name="Trigger backtest").wait_for(timeout=120_000)
    wait_for_app(page, timeout_ms=120_000)
    main = page.locator("[data-testid=stMain]")
    assert page.locator("[data-testid=stException]").count() == 0
    text = main.inner_text()
    for heading in ("Triggers", "Over time", "How final are the numbers", "Signal quality", "Trigger backtest"):
        assert heading in text
    assert metric_value(page, "Predictions") == "20,000"
    assert "Retrain trigger fired" in text  # the example rules on the demo: accuracy and input drift fire
    assert page.locator(".js-plotly-plot").count() == 8
    assert page.locator(".annotation-text", has_text="labels still arriving").count() == 2  # accuracy, coverage
    # the table of contents at the top links to every section's anchor
    contents = main.get_by_role("link", name="Trigger backtest", exact=True)
    assert contents.get_attribute("href").endswith("#trigger-backtest")
    screenshot(page, "stream")

    granularity(page, "week").click()
    wait_for_app(page, timeout_ms=120_000)
    assert page.locator("[data-testid=stException]").count() == 0
    page.locator(".gtitle", has_text="Predictions per week").wait_for(timeout=60_000)
    screenshot(page, "stream_week")


def test_live_mode_follows_a_simulator_writing_in_another_process(page, demo_db, tmp_path):
    copy = tmp_path / "live.duckdb"
    shutil.copy(demo_db, copy)
    with duckdb.connect(str(copy), read_only=True) as con:
        before = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    with serve(copy) as url:
        page.goto(f"{url}/stream")
        wait_for_app(page, timeout_ms=120_000)
        granularity(page, "hour").click()
        page.locator(".gtitle", has_text="Predictions per hour").wait_for(timeout=60_000)
        wait_for_app(page, timeout_ms=120_000)
        assert metric_value(page, "Predictions") == f"{before:,}"
        page.get_by_text("Live", exact=True).click()
        page.locator("text=Live: refreshed").wait_for(timeout=60_000)

        env = {**os.environ, "WORKBENCH_DB": str(copy)}
        writer = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "simulate", "--rate", "100", "--interval", "0.5",
             "--speed", "3600", "--duration", "8", "--seed", "21", "--json"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        seen = {before}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # no click: the page refreshes on its own
            shown = int(metric_value(page, "Predictions").replace(",", ""))
            seen.add(shown)
            if writer.poll() is not None and len(seen) > 2:
                break
            time.sleep(0.5)
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        report = json.loads(out)
        final = before + report["predictions"]
        # let the next refresh pick up the last batch, then the page shows exactly what was written
        deadline = time.monotonic() + 30
        while int(metric_value(page, "Predictions").replace(",", "")) != final and time.monotonic() < deadline:
            time.sleep(0.5)
        assert int(metric_value(page, "Predictions").replace(",", "")) == final
        assert len(seen) >= 3, f"the page should have shown the stream growing, saw {sorted(seen)}"
        assert all(before <= s <= final for s in seen)
        # the user's choices survived every refresh
        assert granularity(page, "hour").get_attribute("aria-checked") == "true"
        assert page.locator(".gtitle", has_text="Predictions per hour").count() >= 1
        assert page.locator("text=Live: refreshed").count() == 1
        assert page.locator("[data-testid=stException]").count() == 0
        page.get_by_text("Live", exact=True).click()  # stop refreshing for a steady picture
        wait_for_app(page, timeout_ms=120_000)
        screenshot(page, "stream_live")
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM predictions").fetchone()[0] == final


def test_a_store_without_feedback_says_so_and_logs_no_console_error(page, tmp_path):
    """Predictions only: "No feedback yet" instead of empty charts (before: an x axis from -1 to 6, a stray
    model-version label and 24 console errors "<path> attribute d: Expected number, MNaN…"); the page fixture
    fails the test on any console error."""
    rows = [
        {"trace_id": f"t{i}", "ts": START + pd.Timedelta(hours=2 * i), "model_version": "v1" if i < 40 else "v2",
         "prediction": i % 2}
        for i in range(72)
    ]  # fmt: skip
    store = build(tmp_path / "no_feedback.duckdb", rows)
    with serve(store.path) as url:
        page.goto(f"{url}/stream")
        wait_for_app(page, timeout_ms=120_000)
        page.get_by_role("heading", name="Trigger backtest").wait_for(timeout=120_000)
        wait_for_app(page, timeout_ms=120_000)
        main = page.locator("[data-testid=stMain]")
        assert page.locator("[data-testid=stException]").count() == 0
        assert metric_value(page, "Predictions") == "72" and metric_value(page, "Feedback rows") == "0"
        assert main.get_by_text("No feedback yet").count() == 2
        assert page.locator(".annotation-text", has_text="No quarantined").count() == 1
        screenshot(page, "stream_no_feedback")
