"""Through a real tracking server: `mlflow server` on 127.0.0.1 (a free port) over a seeded SQLite store, started
by the test and stopped after; the pages' facts and a decision's run go over HTTP, artifacts through its proxy."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry.seed import MODEL
from workbench.gate.tracked import DecisionForm, record
from workbench.registry.client import model_versions
from workbench.registry.settings import MlflowSettings
from workbench.sources.store import Store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture()
def server(uri: str, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` over the seeded store, its artifacts proxied into the test's folder; yields its URL."""
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", uri, "--artifacts-destination", str(tmp_path / "served-artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},  # no job consumer: it starts faster
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its worker, nothing else
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_facts_and_a_decision_go_through_the_tracking_server(server, tmp_path):
    settings = MlflowSettings(tracking_uri=server, registered_model=MODEL, move_champion=True)
    facts = model_versions(settings, ["v1", "v2"])
    assert (facts["v1"].aliases, facts["v2"].metrics) == (("champion",), {"accuracy": 0.84, "roc_auc": 0.9})

    manifest = {"rows": 1, "format": "csv", "sha256": "f" * 64, "source": {}, "filters": {}, "created_at": "x"}
    outcome = record(Store(tmp_path / "w.duckdb"), DecisionForm("approve", "ana", "ok", "v2", manifest), settings)
    assert outcome.failure is None, outcome.failure
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=server, registry_uri=server)
    run = client.get_run(outcome.entry.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert sorted(f.path for f in client.list_artifacts(run.info.run_id, "decision"))[-1] == "decision/manifest.json"
    assert (tmp_path / "served-artifacts").is_dir()  # the proxy stored them where the server was told
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"

    gone = dataclasses.replace(settings, tracking_uri=f"http://127.0.0.1:{free_port()}")
    assert record(Store(tmp_path / "w.duckdb"), DecisionForm("defer", "bob", "later"), gone).failure
