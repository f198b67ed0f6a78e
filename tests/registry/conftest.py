"""Fixtures of the MLflow tests: a seeded SQLite registry copied fresh for each test, its settings, a clean
environment (no tracking URI or settings file from the developer's shell)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.registry.seed import MODEL, seeded_copy
from workbench.registry.settings import MlflowSettings


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow is off unless a test turns it on."""
    for name in ("MLFLOW_TRACKING_URI", "WORKBENCH_SETTINGS", "WORKBENCH_DECISION_KEY", "WORKBENCH_DECISION_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def uri(tmp_path: Path) -> str:
    """A SQLite tracking and registry store with the demo's versions (v1 champion, v2 challenger)."""
    return seeded_copy(tmp_path / "mlflow")


@pytest.fixture()
def settings(uri: str, tmp_path: Path) -> MlflowSettings:
    """Settings naming the seeded model, decisions' artifacts in the test's folder, approvals moving the champion."""
    return MlflowSettings(
        tracking_uri=uri,
        registered_model=MODEL,
        artifact_location=(tmp_path / "decisions").as_uri(),
        move_champion=True,
    )


@pytest.fixture()
def client(uri: str) -> MlflowClient:
    """An independent client on the same store: the tests read back what the workbench wrote."""
    return MlflowClient(tracking_uri=uri, registry_uri=uri)
