"""A decision recorded in the log and then tracked in MLflow (when the ``[mlflow]`` settings or
``$MLFLOW_TRACKING_URI`` turn it on), and the retry of decisions whose MLflow step failed.

Order: the decision is committed to the hash-chained log first (holding the id of the empty run created for it);
then it is logged into that run. MLflow failing at either step costs one line of text, never the decision:
``workbench decisions sync`` logs every decision that has no finished run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from workbench.gate.decisions import Decision, decide, read_decisions
from workbench.registry.client import RegistryError
from workbench.registry.settings import MlflowSettings, mlflow_settings
from workbench.registry.tracking import TrackedDecision, ensure_run, finished_run, log_decision, reserve_run
from workbench.sources.store import Store

SYNC_HINT = "the decision is kept; retry with `workbench decisions sync`"


@dataclass(frozen=True)
class Outcome:
    """A recorded decision and its MLflow step: ``tracked`` when it was logged, ``failure`` (one line) when MLflow
    failed, both None when MLflow is off."""

    entry: Decision
    tracked: TrackedDecision | None = None
    failure: str | None = None

    def mlflow_line(self) -> str | None:
        """The MLflow step in one line (None when MLflow is off)."""
        if self.failure:
            return f"MLflow step failed: {self.failure} ({SYNC_HINT})"
        return self.tracked.describe() if self.tracked else None

    def to_dict(self) -> dict[str, Any]:
        """The entry's JSON with an ``mlflow`` member: ``{"run_id", "version_tagged", "alias_moved"}`` or
        ``{"error"}`` (absent when MLflow is off)."""
        doc = self.entry.to_dict()
        if self.failure:
            doc["mlflow"] = {"error": self.failure}
        elif self.tracked:
            doc["mlflow"] = {
                "run_id": self.tracked.run_id,
                "version_tagged": self.tracked.tagged_version,
                "alias_moved": self.tracked.moved_alias,
            }
        return doc


@dataclass(frozen=True)
class DecisionForm:
    """What a reviewer submits (the CLI's options, the gate page's form); ``data_path`` is the written data file
    of the attached manifest, when there is one (the dataset input's source)."""

    decision: str
    reviewer: str
    rationale: str
    candidate: str | None = None
    manifest: dict[str, Any] | None = None
    override_reason: str | None = None
    data_path: Path | None = None


def track(settings: MlflowSettings, entry: Decision, form: DecisionForm) -> Outcome:
    """Log a recorded entry into its run (a new run when it has none or it was deleted); a failure is one line."""
    try:
        run_id = ensure_run(settings, entry.mlflow_run_id, entry.seq, entry.decision)
        tracked = log_decision(settings, run_id, entry.to_dict(), form.manifest, form.data_path)
    except RegistryError as exc:
        return Outcome(entry, None, str(exc))
    return Outcome(entry, tracked)


def record(store: Store, form: DecisionForm, settings: MlflowSettings | None = None) -> Outcome:
    """Record the decision in the log, then (MLflow on: ``settings``, default :func:`mlflow_settings`) track it."""
    settings = settings or mlflow_settings()
    failures: list[str] = []

    def reserve(seq: int, decision: str) -> str | None:
        try:
            return reserve_run(settings, seq, decision)
        except RegistryError as exc:
            failures.append(str(exc))
            return None

    entry = decide(
        store,
        form.decision,
        form.reviewer,
        form.rationale,
        form.candidate,
        form.manifest,
        form.override_reason,
        reserve_run=reserve if settings else None,
    )
    if settings is None:
        return Outcome(entry)
    if failures:
        return Outcome(entry, None, failures[0])
    return track(settings, entry, form)


def sync(store: Store, settings: MlflowSettings | None = None) -> list[Outcome]:
    """Log every decision that has no finished MLflow run (its step failed, or it predates MLflow here).

    An entry whose run was never created keeps an empty ``mlflow_run_id`` (the log is append-only); its new run
    links back by the ``workbench.decision_hash`` tag. The dataset input is logged from the entry's evidence summary
    of the manifest (rows, sha256, filters, created_at). Only the log's newest approval may move the champion
    alias."""
    settings = settings or mlflow_settings()
    if settings is None:
        raise RegistryError("MLflow is off: set [mlflow] tracking_uri in the settings or $MLFLOW_TRACKING_URI")
    entries = read_decisions(store)
    newest_approval = max((e.seq for e in entries if e.decision == "approve"), default=None)
    outcomes = []
    for entry in entries:
        if finished_run(settings, entry.hash):
            continue
        dataset = entry.evidence.get("dataset")
        manifest = dataset if dataset and dataset.get("sha256") else None
        form = DecisionForm(entry.decision, entry.reviewer, entry.rationale, entry.candidate, manifest)
        # only the newest approval may move the champion alias: an older one synced late must not take it back
        moves = settings.move_champion and entry.seq == newest_approval
        outcomes.append(track(replace(settings, move_champion=moves), entry, form))
    return outcomes
