"""AppTest of the Model quality page: the verdict and its chart, per-version tables, realised vs estimated over
time, a window before the concept drift, a bad window in one line, and the run recorded for the gate."""

from __future__ import annotations

import pytest

from tests.conftest import GOOD, write
from tests.helpers.app_pages import routed_page
from tests.helpers.demo_stores import copy_demo
from workbench.demo.scenario import Scenario
from workbench.ingest.pipeline import ingest_file
from workbench.sources.evidence import latest_runs
from workbench.sources.store import Store


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    target = tmp_path_factory.mktemp("quality-app") / "workbench.duckdb"
    # concept drift on day 45 (Feb 15)
    store, truth = copy_demo(tmp_path_factory, Scenario(rows=20_000, days=60), target)
    assert truth["concept_drift"]["date"].startswith("2026-02-15")
    return store


@pytest.fixture()
def page(demo_store, monkeypatch, navigation_app):
    monkeypatch.delenv("WORKBENCH_SETTINGS", raising=False)
    return routed_page(demo_store.path, "pages/quality.py", monkeypatch), demo_store


def test_the_last_30_days_dropped_after_the_concept_drift_and_the_run_is_recorded(page):
    app, store = page
    assert not app.exception
    assert app.title[0].value == "Model quality"
    (verdict,) = app.error
    assert verdict.value.startswith("**DROPPED** — quality dropped: ")
    assert "outside the band" in verdict.value
    run = latest_runs(store)["quality"]
    assert run.verdict == "dropped" and run.summary["verdict_text"] == verdict.value.split(" — ", 1)[1]
    table = app.dataframe[0].value
    assert set(table["metric"]) == {"accuracy", "precision", "recall", "F1", "ROC AUC", "PR AUC", "Brier score", "ECE"}
    assert set(table["model version"]) == {"v1", "v2"}
    assert table["realised"].between(0, 1).all()
    assert len(app.get("plotly_chart")) == 7  # verdict, 2 confusion matrices, ROC, PR, reliability, over time
    assert any("outside its estimate's band" in w.value for w in app.warning)
    assert [b.label for b in app.get("download_button")] == ["Report (JSON)", "Chunks (CSV)"]


def test_a_window_before_the_concept_drift_holds(page):
    app, _ = page
    app.text_input(key="quality_window").set_value("2026-01-31..2026-02-13").run()
    assert not app.exception
    (verdict,) = app.success
    assert verdict.value.startswith("**HOLDS** — quality holds: every metric within its band")


def test_a_bad_window_is_one_line(page):
    app, _ = page
    app.text_input(key="quality_window").set_value("yesterday").run()
    assert not app.exception
    assert app.error[0].value.startswith("'yesterday' is not a range")


def test_a_store_without_feedback_is_insufficient_and_draws_no_empty_matrix(tmp_path, monkeypatch, navigation_app):
    store = Store(tmp_path / "workbench.duckdb")
    ingest_file(store, write(tmp_path / "p.csv", GOOD))  # three scored predictions, no feedback
    app = routed_page(store.path, "pages/quality.py", monkeypatch, timeout=60)
    app.text_input(key="quality_window").set_value("all").run()
    assert not app.exception
    assert app.warning[0].value.startswith("**INSUFFICIENT** — insufficient labels: the reference has 0 labelled")
    assert any(i.value.startswith("No labelled predictions in the window yet") for i in app.info)
    assert len(app.get("plotly_chart")) == 2  # the verdict's thresholds and the estimates over time only
