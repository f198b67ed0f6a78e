"""Browser walk with MLflow on: a SQLite registry seeded with the demo's versions (v1 champion, v2 challenger); the
A/B and gate pages show each version's registry facts, and a decision made on the gate appears as an MLflow run with
the dataset input and manifest (the fairness page's champion/challenger from the aliases: tests/app)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from tests.e2e.conftest import screenshot, serve, wait_for_app
from tests.registry.seed import MODEL, seeded_copy
from workbench.gate.decisions import read_decisions
from workbench.registry.tracking import HASH_TAG
from workbench.sources.store import Store

pytestmark = pytest.mark.e2e


@pytest.fixture()
def mlflow_app(demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The app on a copy of the demo store (the decision lands there, not in the shared one) with MLflow on."""
    db = tmp_path / "workbench.duckdb"
    shutil.copy(demo_db, db)
    uri = seeded_copy(tmp_path / "mlflow")
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[mlflow]\nregistered_model = "{MODEL}"\nartifact_location = "{(tmp_path / "a").as_uri()}"\n')
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("WORKBENCH_SETTINGS", str(settings))
    with serve(db) as url:
        yield url, uri, Store(db)


def test_pages_show_registry_facts_and_a_gate_decision_becomes_a_run(mlflow_app, page, tmp_path):
    # mlflow_app first: it is set up before the page and stopped after it closes (no "server not responding")
    url, uri, store = mlflow_app
    page.goto(f"{url}/abtest")
    registry = page.get_by_text(f"Model registry · {MODEL}")
    registry.wait_for(timeout=90_000)
    wait_for_app(page)
    body = page.inner_text("[data-testid=stMain]")
    assert "matches a registered version by number (v2 is version 2)" in body  # the facts table's caption
    assert page.locator("[data-testid=stException]").count() == 0  # (the table is a canvas: see the screenshot)
    screenshot(page, "registry-abtest")

    page.goto(f"{url}/gate")
    wait_for_app(page)
    page.get_by_text(f"Model registry · {MODEL}").wait_for(timeout=30_000)
    page.get_by_label("Reviewer").fill("ana")
    page.get_by_label("Rationale").fill("browser walk: defer until the A/B test ends")
    page.get_by_role("radiogroup", name="Decision").get_by_text("defer", exact=True).click()
    page.get_by_role("button", name="Record decision").click()
    page.get_by_text("MLflow: logged as MLflow run").wait_for(timeout=60_000)
    wait_for_app(page)
    screenshot(page, "registry-gate")

    entry = read_decisions(store)[-1]  # the store is the session's: the gate's own walk may have decided before
    assert (entry.reviewer, entry.rationale) == ("ana", "browser walk: defer until the A/B test ends")
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(entry.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.tags[HASH_TAG] == entry.hash
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == entry.dataset_sha256[:36]
    local = download_artifacts(run_id=run.info.run_id, artifact_path="decision/manifest.json",
                               dst_path=str(tmp_path / "dl"), tracking_uri=uri)  # fmt: skip
    assert json.loads(Path(local).read_text())["sha256"] == entry.dataset_sha256
