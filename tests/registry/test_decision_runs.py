"""Decisions tracked in MLflow: the run with its params, tags, artifacts and dataset input, the candidate's tag and
the champion alias; the log first (an unreachable registry costs one line, never a decision) and the sync."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
import time
from pathlib import Path

import duckdb
from mlflow.artifacts import download_artifacts
from typer.testing import CliRunner

from tests.registry.seed import MODEL
from workbench.cli import app
from workbench.gate.decisions import read_decisions, verify
from workbench.gate.tracked import DecisionForm, record, sync
from workbench.registry.client import RegistryError
from workbench.registry.tracking import DIGEST_CHARS, HASH_TAG
from workbench.sources.store import Store

DATA = b"a retraining set's bytes"
MANIFEST = {"rows": 3, "format": "parquet", "sha256": hashlib.sha256(DATA).hexdigest(), "filters": {"seed": 0},
            "source": {"store": "demo"}, "created_at": "2026-12-01T00:00:00Z"}  # fmt: skip


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def artifact(client, run_id: str, path: str, folder: Path) -> dict:
    """A JSON artifact of the run, downloaded through MLflow."""
    local = download_artifacts(
        run_id=run_id, artifact_path=path, dst_path=str(folder), tracking_uri=client._tracking_client.tracking_uri
    )
    return json.loads(Path(local).read_text(encoding="utf-8"))


def test_an_approval_is_a_finished_run_with_its_evidence_dataset_and_manifest(settings, client, tmp_path):
    store = Store(tmp_path / "w.duckdb")
    outcome = record(store, DecisionForm("approve", "ana", "v2 wins the A/B test", "v2", MANIFEST), settings)
    entry = outcome.entry
    assert outcome.failure is None and entry.mlflow_run_id == outcome.tracked.run_id
    run = client.get_run(entry.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "workbench-decisions"
    assert run.data.params["decision"] == "approve" and run.data.params["reviewer"] == "ana"
    assert run.data.params["candidate"] == "v2" and run.data.params["dataset_sha256"] == MANIFEST["sha256"]
    assert run.data.params["evidence.fairness"] == "not run"
    assert run.data.tags[HASH_TAG] == entry.hash and run.data.tags["mlflow.note.content"] == "v2 wins the A/B test"
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "retraining_set"
    assert dataset_input.dataset.digest == MANIFEST["sha256"][:DIGEST_CHARS]
    assert {t.key: t.value for t in dataset_input.tags}["workbench.sha256"] == MANIFEST["sha256"]
    names = sorted(f.path for f in client.list_artifacts(run.info.run_id, "decision"))
    assert names == ["decision/decision.json", "decision/evidence.json", "decision/manifest.json"]
    assert artifact(client, run.info.run_id, "decision/manifest.json", tmp_path / "dl") == MANIFEST
    assert artifact(client, run.info.run_id, "decision/decision.json", tmp_path / "dl")["hash"] == entry.hash
    assert client.get_model_version(MODEL, "2").tags[HASH_TAG] == entry.hash
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
    assert verify(store).ok


def test_the_run_id_is_covered_by_the_entry_hash(settings, tmp_path):
    store = Store(tmp_path / "w.duckdb")
    record(store, DecisionForm("defer", "ana", "wait"), settings)
    assert verify(store).ok and read_decisions(store)[0].mlflow_run_id
    con = duckdb.connect(str(store.path))
    con.execute("UPDATE decisions SET mlflow_run_id = 'another-run'")
    con.close()
    check = verify(store)
    assert not check.ok and check.problem == "entry 1 was edited (its hash does not match)"


def test_without_move_champion_the_alias_stays(settings, client, tmp_path):
    kept = dataclasses.replace(settings, move_champion=False)
    outcome = record(Store(tmp_path / "w.duckdb"), DecisionForm("approve", "ana", "ok", "v2"), kept)
    assert outcome.tracked.tagged_version == "2" and outcome.tracked.moved_alias is None
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"


def test_an_unreachable_registry_keeps_the_decision_and_sync_logs_it_later(settings, client, tmp_path):
    store = Store(tmp_path / "w.duckdb")
    down = dataclasses.replace(settings, tracking_uri=f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    outcome = record(store, DecisionForm("approve", "ana", "ship it", "v2", MANIFEST), down)
    assert time.monotonic() - started < 15  # no minutes of retries
    line = outcome.mlflow_line()
    assert outcome.failure and "\n" not in line and "retry with `workbench decisions sync`" in line
    (entry,) = read_decisions(store)
    assert entry.decision == "approve" and entry.mlflow_run_id is None and verify(store).ok

    (synced,) = sync(store, settings)
    assert synced.failure is None
    run = client.get_run(synced.tracked.run_id)
    assert run.data.tags[HASH_TAG] == entry.hash and run.info.status == "FINISHED"
    assert run.inputs.dataset_inputs[0].dataset.digest == MANIFEST["sha256"][:DIGEST_CHARS]
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
    assert sync(store, settings) == []  # nothing left to log


def test_sync_leaves_the_champion_with_the_newest_approval(settings, client, tmp_path):
    store = Store(tmp_path / "w.duckdb")
    down = dataclasses.replace(settings, tracking_uri=f"http://127.0.0.1:{closed_port()}")
    record(store, DecisionForm("approve", "ana", "first", "v2"), down)
    record(store, DecisionForm("approve", "bob", "back to v1", "v1"), down)
    outcomes = sync(store, settings)
    assert [o.tracked.moved_alias for o in outcomes] == [None, "champion"]
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"


def test_the_cli_decides_with_mlflow_and_syncs(uri, tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text(
        f'[mlflow]\nregistered_model = "{MODEL}"\nartifact_location = "{(tmp_path / "a").as_uri()}"\n'
    )
    monkeypatch.setenv("WORKBENCH_SETTINGS", str(settings_file))
    runner = CliRunner()
    args = ["decide", "--decision", "reject", "--reviewer", "ana", "--rationale", "drift", "--db", str(db), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["mlflow"]["run_id"] == doc["mlflow_run_id"]
    synced = runner.invoke(app, ["decisions", "sync", "--db", str(db)])
    assert (synced.exit_code, synced.stdout.strip()) == (0, "every decision is in MLflow")


def test_the_cli_reports_an_unreachable_registry_in_one_line_and_keeps_the_decision(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    result = CliRunner().invoke(app, ["decide", "--decision", "defer", "--reviewer", "ana", "--rationale", "x",
                                      "--db", str(db)])  # fmt: skip
    assert result.exit_code == 0 and "decision 1 recorded: defer by ana" in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("MLflow step failed: MLflow at http://127.0.0.1:")
    failed = CliRunner().invoke(app, ["decisions", "sync", "--db", str(db)])  # `workbench` prints it as one line
    assert isinstance(failed.exception, RegistryError) and "\n" not in str(failed.exception)


def test_an_approved_candidate_that_is_not_registered_is_a_note_and_the_run_finishes(settings, client, tmp_path):
    outcome = record(Store(tmp_path / "w.duckdb"), DecisionForm("approve", "ana", "ok", "v9"), settings)
    assert outcome.failure is None and outcome.tracked.tagged_version is None
    assert "'v9' is no version of 'feedback-model' (rule: number): nothing tagged" in outcome.mlflow_line()
    assert client.get_run(outcome.tracked.run_id).info.status == "FINISHED"
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"


def test_a_written_set_is_the_dataset_input_source(uri, client, tmp_path, monkeypatch):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "retraining_set.parquet").write_bytes(DATA)
    (folder / "manifest.json").write_text(json.dumps(MANIFEST))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text(f'[mlflow]\nartifact_location = "{(tmp_path / "a").as_uri()}"\n')
    monkeypatch.setenv("WORKBENCH_SETTINGS", str(settings_file))
    args = ["decide", "--decision", "defer", "--reviewer", "ana", "--rationale", "x", "--dataset",
            str(folder / "manifest.json"), "--db", str(tmp_path / "w.duckdb"), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = client.get_run(json.loads(result.stdout)["mlflow_run_id"])
    (dataset_input,) = run.inputs.dataset_inputs
    source = json.loads(dataset_input.dataset.source)
    assert dataset_input.dataset.source_type == "local"
    assert source["uri"] == str((folder / "retraining_set.parquet").resolve())
