"""AppTest of the entrypoint and the home page (charts are checked through their raw elements)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import GOOD, ROOT
from tests.helpers.demo_stores import copy_demo
from workbench.demo.scenario import Scenario

APP = str(ROOT / "app.py")


def plotly_values(array) -> np.ndarray:
    """Decode a Plotly JSON array (a list, or a typed array {"dtype", "bdata"} as Plotly 6+ writes)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
    return np.asarray(array)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    target = tmp_path_factory.mktemp("app") / "workbench.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=8_000, days=30), target)


@pytest.fixture()
def app(demo_store, monkeypatch, navigation_app):
    monkeypatch.setenv("WORKBENCH_DB", str(demo_store[0].path))
    monkeypatch.chdir(ROOT)
    return AppTest.from_file(APP, default_timeout=60)


def test_home_shows_the_store_summary(app, demo_store):
    _, truth = demo_store
    app.run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Predictions"] == "8,000"
    assert metrics["Feedback rows"] == f"{truth['feedback_rows']:,}"
    assert metrics["Quarantined rows"] == "0"
    # each number says what it counts: the feedback rows split into those on predictions and the orphans
    helps = {m.label: m.help for m in app.metric}
    joined = truth["feedback_rows"] - truth["orphan_feedback"]
    assert f"{joined:,} on predictions in the store + {truth['orphan_feedback']:,} orphans" in helps["Feedback rows"]
    assert "Labels from" in helps["Labelled (any type)"]
    assert "8,000 predictions" in app.markdown[0].value
    assert len(app.get("plotly_chart")) == 2
    chart = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert sum(plotly_values(trace["y"]).sum() for trace in chart["data"] if trace["type"] == "bar") == 8_000


def test_model_version_filter_narrows_every_number(app):
    app.run()
    app.sidebar.multiselect(key="versions").select("v2").run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    predictions = int(metrics["Predictions"].replace(",", ""))
    assert 0 < predictions < 8_000
    assert "the selected window" in app.markdown[0].value


def test_missing_store_says_how_to_make_one(monkeypatch, tmp_path, navigation_app):
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "none.duckdb"))
    monkeypatch.chdir(ROOT)
    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception
    assert "workbench demo" in app.info[0].value


def test_uploaded_files_are_ingested_into_a_temporary_store(app):
    app.run()
    app.sidebar.radio(key="source").set_value("Uploaded files").run()
    assert not app.exception
    uploader = app.sidebar.get("file_uploader")[0]
    content = (GOOD.strip() + "\nbad,never,v1,1,0.5,1,DE,x\n").encode()
    uploader.set_value([("mine.csv", content, "text/csv")])
    app.sidebar.form_submit_button[0].click().run()
    assert not app.exception
    captions = " ".join(c.value for c in app.sidebar.caption)
    assert "mine.csv → predictions: 3 accepted, 0 duplicates, 1 quarantined" in captions
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Predictions"] == "3" and metrics["Quarantined rows"] == "1"
