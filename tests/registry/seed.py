"""A real MLflow registry for the tests: a SQLite tracking and registry store with the demo's two model versions.

The demo's predictions name ``v1`` (the champion) and ``v2`` (the challenger); the seed registers ``feedback-model``
versions 1 and 2, each from a training run with logged metrics, and sets the aliases the way a team would.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

from mlflow import MlflowClient

MODEL = "feedback-model"
METRICS = {"1": {"accuracy": 0.81, "roc_auc": 0.87}, "2": {"accuracy": 0.84, "roc_auc": 0.9}}
ALIASES = {"champion": "1", "challenger": "2"}


def sqlite_uri(folder: Path) -> str:
    """A SQLite tracking URI in ``folder`` (MLflow creates its tables on first use)."""
    return f"sqlite:///{folder / 'mlflow.db'}"


def seed(uri: str, artifacts: Path) -> MlflowClient:
    """Register the demo's versions with their training runs and aliases; returns the client."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("training", artifact_location=artifacts.as_uri())
    client.create_registered_model(MODEL)
    for version, metrics in METRICS.items():
        run = client.create_run(experiment, run_name=f"train-v{version}")
        for name, value in metrics.items():
            client.log_metric(run.info.run_id, name, value)
        client.set_terminated(run.info.run_id)
        created = client.create_model_version(MODEL, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        assert created.version == int(version)
    for alias, version in ALIASES.items():
        client.set_registered_model_alias(MODEL, alias, version)
    return client


@functools.cache
def template() -> Path:
    """A seeded SQLite registry built once per process (MLflow's first-use migrations take ~8 s; a copy is instant)."""
    folder = Path(tempfile.mkdtemp(prefix="workbench-mlflow-template-"))
    seed(sqlite_uri(folder), folder / "training-artifacts")
    return folder / "mlflow.db"


def seeded_copy(folder: Path) -> str:
    """A fresh copy of the seeded registry in ``folder``; returns its tracking URI."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(template(), folder / "mlflow.db")
    return sqlite_uri(folder)
