"""Reading the MLflow model registry: which registered version each prediction's ``model_version`` is, with its
aliases, creation time, source run and that run's logged metrics.

``mlflow`` is imported inside the functions that talk to it (it takes seconds to import; the CLI and the pages
must not pay for it when MLflow is off). Every MLflow failure becomes one :class:`RegistryError` line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.registry.settings import MlflowSettings, version_number


class RegistryError(WorkbenchError):
    """MLflow could not be reached or refused a request; the message is one line with the tracking URI."""


def short(exc: BaseException) -> str:
    """An MLflow exception's message as one line of at most 200 characters (its messages span many lines)."""
    line = next((part.strip() for part in str(exc).splitlines() if part.strip()), type(exc).__name__)
    return line if len(line) <= 200 else line[:199] + "…"


@contextmanager
def talking_to(settings: MlflowSettings, what: str) -> Iterator[None]:
    """Turn any failure inside into a one-line :class:`RegistryError` naming ``what`` failed and where."""
    try:
        yield
    except WorkbenchError:
        raise
    except Exception as exc:  # MLflow raises MlflowException, requests' and SQLAlchemy's errors, OSError…
        raise RegistryError(f"MLflow at {settings.tracking_uri}: {what} failed ({short(exc)})") from None


def client(settings: MlflowSettings) -> Any:
    """An ``MlflowClient`` for the settings' URI (tracking and registry), with its HTTP timeout and retries set:
    MLflow reads them from the environment per request, and its default retries wait minutes on a dead server."""
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = f"{max(1, round(settings.timeout_seconds))}"
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(settings.retries)
    with talking_to(settings, "connecting"):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


@dataclass(frozen=True)
class VersionFacts:
    """One registered model version as a page shows it; ``created_at`` in UTC, ``metrics`` its source run's latest
    logged values (empty when the version names no run)."""

    model: str
    version: str
    aliases: tuple[str, ...]
    created_at: datetime
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``created_at`` as ISO text)."""
        return {
            "model": self.model,
            "version": self.version,
            "aliases": list(self.aliases),
            "created_at": self.created_at.isoformat(),
            "run_id": self.run_id,
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
        }


def matches(settings: MlflowSettings, text: str, version: Any, aliases: dict[str, str]) -> bool:
    """Whether a prediction's ``model_version`` text names this registered ``version`` under the settings' rule."""
    if settings.match == "tag":
        return (version.tags or {}).get(settings.match_tag) == text
    if settings.match == "alias":
        return aliases.get(text) == str(version.version)
    return version_number(text) == str(version.version)


def quoted(text: str) -> str:
    """``text`` as a single-quoted literal of MLflow's search syntax."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def registered(settings: MlflowSettings, mlflow: Any) -> tuple[dict[str, str], list[Any]]:
    """The registered model's aliases (alias → version number) and its versions, in two calls."""
    model = settings.registered_model
    with talking_to(settings, f"reading the registered model '{model}'"):
        aliases = {alias: str(number) for alias, number in (mlflow.get_registered_model(model).aliases or {}).items()}
        return aliases, list(mlflow.search_model_versions(f"name={quoted(model)}"))


def model_versions(settings: MlflowSettings, names: list[str]) -> dict[str, VersionFacts | None]:
    """Each prediction version text → the facts of the registered version it names (None: no match).

    One call for the model's aliases, one search for its versions, one ``get_run`` per matched version."""
    mlflow = client(settings)
    model = settings.registered_model
    aliases, versions = registered(settings, mlflow)
    by_version: dict[str, list[str]] = {}
    for alias, number in aliases.items():
        by_version.setdefault(number, []).append(alias)
    found: dict[str, VersionFacts | None] = {}
    metrics: dict[str, dict[str, float]] = {}
    for name in names:
        version = next((v for v in versions if matches(settings, name, v, aliases)), None)
        if version is None:
            found[name] = None
            continue
        run_id = version.run_id or None
        if run_id and run_id not in metrics:
            metrics[run_id] = run_metrics(settings, mlflow, run_id)
        found[name] = VersionFacts(
            model=model,
            version=str(version.version),
            aliases=tuple(sorted(by_version.get(str(version.version), []))),
            created_at=datetime.fromtimestamp(version.creation_timestamp / 1000, UTC),
            run_id=run_id,
            metrics=metrics.get(run_id or "", {}),
            tags=dict(version.tags or {}),
        )
    return found


def run_metrics(settings: MlflowSettings, mlflow: Any, run_id: str) -> dict[str, float]:
    """The run's latest logged metrics; empty when the run is gone (a version outlives a cleaned-up run), while
    a registry that cannot be reached still fails in one line."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(mlflow.get_run(run_id).data.metrics)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(
                f"MLflow at {settings.tracking_uri}: reading run {run_id} failed ({short(exc)})"
            ) from None
        return {}


def names_by_alias(facts: dict[str, VersionFacts | None]) -> dict[str, str]:
    """Alias → the prediction version text whose registered version carries it (``champion`` → ``v1``)."""
    return {alias: name for name, fact in facts.items() if fact for alias in fact.aliases}


def find_version(settings: MlflowSettings, name: str) -> Any | None:
    """The registered model version a prediction's version text names under the rule, else None."""
    aliases, versions = registered(settings, client(settings))
    return next((v for v in versions if matches(settings, name, v, aliases)), None)
