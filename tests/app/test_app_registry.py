"""AppTest of the registry facts on the pages (MLflow on, a seeded SQLite registry): the gate shows each demo
version's registered facts and logs a decision as a run; the fairness page defaults champion and challenger from
the aliases; with MLflow off nothing of it shows."""

from __future__ import annotations

import socket

import pytest
from mlflow import MlflowClient
from streamlit.testing.v1 import AppTest

from tests.helpers.app_pages import routed_page
from tests.helpers.demo_stores import copy_demo
from tests.registry.seed import MODEL, seeded_copy
from workbench.demo.scenario import Scenario
from workbench.gate.decisions import read_decisions
from workbench.registry.tracking import HASH_TAG
from workbench.sources.store import Store


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> Store:
    target = tmp_path_factory.mktemp("registry-app") / "workbench.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=5_000, days=30), target)[0]


@pytest.fixture(autouse=True)
def routed(navigation_app) -> None:
    """Pages run through the router (app.py), as in the other AppTests."""


@pytest.fixture()
def mlflow_on(tmp_path, monkeypatch) -> str:
    """A seeded registry named in a settings file, MLflow on through $MLFLOW_TRACKING_URI; returns the URI."""
    uri = seeded_copy(tmp_path / "mlflow")
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[mlflow]\nregistered_model = "{MODEL}"\nartifact_location = "{(tmp_path / "a").as_uri()}"\n')
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("WORKBENCH_SETTINGS", str(settings))
    return uri


def open_page(store: Store, monkeypatch, script: str) -> AppTest:
    for name in ("WORKBENCH_READ_ONLY", "WORKBENCH_DECISION_KEY", "WORKBENCH_DECISION_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    app = routed_page(store.path, script, monkeypatch)
    assert not app.exception
    return app


def registry_rows(app: AppTest) -> list[dict]:
    """The rows of the "Model registry" table (the table after its heading)."""
    frames = [t.value for t in app.dataframe if "registered version" in t.value.columns]
    assert len(frames) == 1
    return frames[0].to_dict("records")


def test_the_gate_shows_the_registry_facts_and_logs_the_decision_as_a_run(demo_store, mlflow_on, monkeypatch):
    app = open_page(demo_store, monkeypatch, "pages/gate.py")
    assert any(f"**Model registry** · `{MODEL}`" in m.value for m in app.markdown)
    rows = {r["model version"]: r for r in registry_rows(app)}
    assert (rows["v1"]["registered version"], rows["v1"]["aliases"]) == ("1", "champion")
    assert (rows["v2"]["registered version"], rows["v2"]["aliases"]) == ("2", "challenger")
    assert rows["v2"]["run metrics"] == "accuracy 0.84, roc_auc 0.9"
    assert app.selectbox(key="gate_candidate").value == "v2"  # the challenger alias's version
    (form,) = [f for f in app.get("form") if [b.label for b in f.get("form_submit_button")] == ["Record decision"]]
    form.text_input[0].input("ana")
    form.text_area[0].input("defer until the A/B test ends")
    form.radio[0].set_value("defer")
    form.get("form_submit_button")[0].click().run()
    assert not app.exception
    (entry,) = read_decisions(demo_store)
    assert any(f"MLflow: logged as MLflow run {entry.mlflow_run_id}" in i.value for i in app.info)
    run = MlflowClient(tracking_uri=mlflow_on).get_run(entry.mlflow_run_id)
    assert run.data.tags[HASH_TAG] == entry.hash
    assert run.inputs.dataset_inputs[0].dataset.digest == entry.dataset_sha256[:36]


def test_the_fairness_page_defaults_champion_and_challenger_from_the_aliases(demo_store, mlflow_on, monkeypatch):
    app = open_page(demo_store, monkeypatch, "pages/fairness.py")
    assert (app.selectbox(key="fair_champion").value, app.selectbox(key="fair_challenger").value) == ("v1", "v2")
    assert {r["model version"] for r in registry_rows(app)} == {"v1", "v2"}


def test_with_mlflow_off_the_pages_show_no_registry(demo_store, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WORKBENCH_SETTINGS", raising=False)
    app = open_page(demo_store, monkeypatch, "pages/fairness.py")
    assert app.selectbox(key="fair_champion").value == "(first)"
    assert not any("Model registry" in m.value for m in app.markdown)


def test_the_ab_page_takes_the_champion_alias_as_control_and_shows_the_facts(demo_store, mlflow_on, monkeypatch):
    MlflowClient(tracking_uri=mlflow_on).set_registered_model_alias(MODEL, "champion", "2")  # v2 is the champion now
    app = open_page(demo_store, monkeypatch, "pages/abtest.py")
    app.selectbox(key="ab_arm_source").set_value("model_version").run()
    assert not app.exception
    assert app.selectbox(key="ab_control").value == "v2"
    rows = {r["model version"]: r["aliases"] for r in registry_rows(app)}
    assert rows == {"v1": "—", "v2": "challenger, champion"}  # both aliases on version 2 now


def test_an_unreachable_registry_is_one_warning_and_the_page_still_renders(demo_store, tmp_path, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # released: nothing listens there
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[mlflow]\ntracking_uri = "http://127.0.0.1:{port}"\nregistered_model = "{MODEL}"\n')
    monkeypatch.setenv("WORKBENCH_SETTINGS", str(settings))
    app = open_page(demo_store, monkeypatch, "pages/gate.py")
    (warning,) = [w.value for w in app.warning if w.value.startswith("Model registry:")]
    assert f"MLflow at http://127.0.0.1:{port}: reading the registered model" in warning and "\n" not in warning
    assert [h.value for h in app.subheader][-2:] == ["Decision", "Decision log"]  # the rest of the page is there


@pytest.mark.parametrize("script", ["pages/home.py", "pages/quality.py", "pages/stream.py"])
def test_every_page_that_names_the_versions_shows_their_registry_facts(demo_store, mlflow_on, monkeypatch, script):
    app = open_page(demo_store, monkeypatch, script)
    rows = {r["model version"]: (r["registered version"], r["aliases"]) for r in registry_rows(app)}
    assert rows == {"v1": ("1", "champion"), "v2": ("2", "challenger")}


def test_the_drift_page_shows_the_facts_of_the_versions_it_compares(demo_store, mlflow_on, monkeypatch):
    app = open_page(demo_store, monkeypatch, "pages/drift.py")
    assert not any("Model registry" in m.value for m in app.markdown)  # windows of time name no version
    app.radio(key="drift_preset").set_value("Model version A vs B").run()
    assert not app.exception
    assert {r["model version"] for r in registry_rows(app)} == {"v1", "v2"}
