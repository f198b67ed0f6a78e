"""AppTest of the sidebar's engine choice: a lake folder's Home page on Spark shows DuckDB's numbers, and a
store file goes back to DuckDB (a DuckDB store never runs on Spark)."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from workbench.demo.scenario import Scenario, build_demo
from workbench.ingest import lake as lake_module
from workbench.ingest.lake import LakeStore, export_lake
from workbench.sources.store import Store
from workbench.sources.store_queries import store_summary

pytestmark = [pytest.mark.xdist_group("spark"), pytest.mark.slow]
pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("engine") / "workbench.duckdb")
    build_demo(store, Scenario(rows=4_000, days=20))
    return store


def metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def test_the_sidebar_runs_a_lake_on_spark_with_duckdb_s_numbers(demo_store, monkeypatch, navigation_app) -> None:
    lake = export_lake(demo_store, demo_store.path.parent / "lake")
    monkeypatch.setenv("WORKBENCH_DB", str(demo_store.path))
    monkeypatch.setenv("WORKBENCH_ENGINE", "duckdb")  # restored after the test, whatever the app set
    monkeypatch.delenv("WORKBENCH_DATA_ROOTS", raising=False)
    monkeypatch.chdir(ROOT)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    app.run()
    assert "engine" not in [radio.key for radio in app.sidebar.radio]  # offered with a lake folder only
    app.sidebar.radio(key="source").set_value("Lake folder").run()
    assert app.sidebar.radio(key="engine").value == "duckdb"
    app.sidebar.radio(key="engine").set_value("spark").run()
    app.sidebar.text_input(key="lake_dir").input(str(lake)).run()
    assert not app.exception and not app.sidebar.error
    assert os.environ["WORKBENCH_ENGINE"] == "spark"
    assert any(key[1] == lake.resolve() for key in lake_module._SPARK_ROWS)  # Spark read the lake
    summary = store_summary(LakeStore(lake))  # DuckDB's numbers
    shown = metrics(app)
    assert shown["Predictions"] == f"{summary.predictions:,}" == "4,000"
    assert shown["Feedback rows"] == f"{summary.feedback:,}"
    app.sidebar.radio(key="source").set_value("Default store").run()
    assert not app.exception and os.environ["WORKBENCH_ENGINE"] == "duckdb"
    assert metrics(app)["Predictions"] == "4,000"
