"""Decisions and retraining sets as MLflow runs: one run per decision in the workbench's experiment, with the
decision, reviewer, rationale and the evidence's verdicts as params and tags, the entry, the evidence and the
manifest as JSON artifacts, the curated set as a dataset input (``mlflow.data``), and on an approval the
candidate version tagged with the decision's hash (and the champion alias moved when the settings say so).

The decision log comes first: :func:`reserve_run` only creates the empty run whose id the log entry then covers
by its hash; everything of the decision is logged by :func:`log_decision` after the entry is committed, so MLflow
failing never loses a decision (``workbench decisions sync`` logs it later).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.result import FAMILIES
from workbench.registry.client import client, find_version, talking_to
from workbench.registry.settings import MlflowSettings

HASH_TAG = "workbench.decision_hash"
SEQ_TAG = "workbench.decision_seq"
SHA256_TAG = "workbench.sha256"
DIGEST_CHARS = 36  # MLflow's limit on a dataset digest: the manifest's sha256 is cut to its first 36 hex digits


@dataclass(frozen=True)
class TrackedDecision:
    """What the MLflow step did: the run, the model version tagged with the decision's hash (approvals with a
    candidate and a registered model) and the alias moved to it (None when none was)."""

    run_id: str
    experiment_id: str
    tagged_version: str | None = None
    moved_alias: str | None = None
    note: str | None = None  # why an approved candidate was not tagged

    def describe(self) -> str:
        """The step in one line."""
        text = f"logged as MLflow run {self.run_id}"
        if self.tagged_version:
            text += f"; version {self.tagged_version} tagged with the decision's hash"
        if self.moved_alias:
            text += f"; alias '{self.moved_alias}' moved to it"
        return text + (f"; {self.note}" if self.note else "")


def experiment_id(settings: MlflowSettings, mlflow: Any) -> str:
    """The workbench's experiment (created on first use, in ``artifact_location`` when set)."""
    with talking_to(settings, f"opening the experiment '{settings.experiment}'"):
        found = mlflow.get_experiment_by_name(settings.experiment)
        if found is not None:
            return found.experiment_id
        return mlflow.create_experiment(settings.experiment, artifact_location=settings.artifact_location or None)


def reserve_run(settings: MlflowSettings, seq: int, decision: str) -> str:
    """Create the decision's empty run and return its id (the log entry stores it, covered by its hash)."""
    mlflow = client(settings)
    experiment = experiment_id(settings, mlflow)
    with talking_to(settings, "creating the decision's run"):
        run = mlflow.create_run(experiment, run_name=f"decision-{seq}-{decision}")
    return run.info.run_id


def decision_params(entry: dict[str, Any]) -> dict[str, str]:
    """The run's params: the decision's fields and each evidence family's verdict (``not run`` when absent)."""
    params = {
        "decision": entry["decision"],
        "reviewer": entry["reviewer"],
        "candidate": entry.get("candidate") or "",
        "dataset_sha256": entry.get("dataset_sha256") or "",
        "decided_at": entry["decided_at"],
        "seq": str(entry["seq"]),
        "override_reason": (entry.get("override_reason") or "")[:500],
    }
    evidence = entry.get("evidence") or {}
    for family in FAMILIES:
        run = evidence.get(family)
        params[f"evidence.{family}"] = run.get("verdict", "") if run else "not run"
    return params


def decision_tags(entry: dict[str, Any]) -> dict[str, str]:
    """The run's tags: the entry's hash and seq (the link back to the log), the rationale (also the run's
    description) and who decided what."""
    rationale = entry["rationale"][:5000]
    return {
        HASH_TAG: entry["hash"],
        SEQ_TAG: str(entry["seq"]),
        "workbench.decision": entry["decision"],
        "workbench.reviewer": entry["reviewer"],
        "workbench.rationale": rationale,
        "mlflow.note.content": rationale,
    }


def dataset_input(manifest: dict[str, Any], data_path: Path | None) -> Any:
    """The curated set as an ``mlflow.data`` dataset input: digest = the manifest's sha256 (its first 36 hex digits,
    MLflow's limit; the whole hash is the input's ``workbench.sha256`` tag), source = the data file when written,
    else the store it was curated from."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    if data_path is not None:
        source = resolve_dataset_source(str(data_path.resolve()))
    else:
        source = CodeDatasetSource({"workbench.source": json.dumps(manifest.get("source"), default=str)})
    dataset = MetaDataset(source, name="retraining_set", digest=manifest["sha256"][:DIGEST_CHARS])
    tags = [InputTag("mlflow.data.context", "training"), InputTag(SHA256_TAG, manifest["sha256"])]
    return DatasetInput(dataset._to_mlflow_entity(), tags=tags)  # MLflow's documented way for a client


def log_artifacts(settings: MlflowSettings, mlflow: Any, run_id: str, documents: dict[str, Any]) -> None:
    """Write each document as ``<name>`` (JSON) under the run's ``decision/`` artifacts."""
    with tempfile.TemporaryDirectory(prefix="workbench-mlflow-") as folder:
        for name, document in documents.items():
            path = Path(folder) / name
            path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str), encoding="utf-8")
        with talking_to(settings, "uploading the decision's artifacts"):
            mlflow.log_artifacts(run_id, folder, artifact_path="decision")


def tag_candidate(
    settings: MlflowSettings, mlflow: Any, entry: dict[str, Any]
) -> tuple[str | None, str | None, str | None]:
    """An approval's candidate version tagged with the decision's hash (and the champion alias moved to it with
    ``move_champion``): (version tagged, alias moved, why nothing was tagged); a candidate that is no registered
    version is said in the note, not a failure (a retry would not change it)."""
    if not (entry["decision"] == "approve" and entry.get("candidate") and settings.has_model):
        return None, None, None
    version = find_version(settings, entry["candidate"])
    if version is None:
        model = settings.registered_model
        return None, None, f"'{entry['candidate']}' is no version of '{model}' (rule: {settings.match}): nothing tagged"
    tagged = str(version.version)
    with talking_to(settings, f"tagging version {tagged} of '{settings.registered_model}'"):
        mlflow.set_model_version_tag(settings.registered_model, tagged, HASH_TAG, entry["hash"])
        if not settings.move_champion:
            return tagged, None, None
        mlflow.set_registered_model_alias(settings.registered_model, settings.champion_alias, tagged)
    return tagged, settings.champion_alias, None


def log_decision(
    settings: MlflowSettings,
    run_id: str,
    entry: dict[str, Any],
    manifest: dict[str, Any] | None = None,
    data_path: Path | None = None,
) -> TrackedDecision:
    """Log a recorded decision into its run (see the module's docstring) and finish the run; an approval with a
    candidate tags the candidate's registered version and, with ``move_champion``, moves the champion alias."""
    from mlflow.entities import Param, RunTag

    mlflow = client(settings)
    with talking_to(settings, f"logging the decision into run {run_id}"):
        experiment = mlflow.get_run(run_id).info.experiment_id
        params = [Param(k, v) for k, v in decision_params(entry).items()]
        mlflow.log_batch(run_id, params=params, tags=[RunTag(k, v) for k, v in decision_tags(entry).items()])
    decision = {k: v for k, v in entry.items() if k != "evidence"}
    documents = {"decision.json": decision, "evidence.json": entry["evidence"]}
    if manifest is not None:
        documents["manifest.json"] = manifest
        with talking_to(settings, "logging the retraining set as the run's dataset input"):
            mlflow.log_inputs(run_id, datasets=[dataset_input(manifest, data_path)])
    log_artifacts(settings, mlflow, run_id, documents)
    tagged, moved, note = tag_candidate(settings, mlflow, entry)
    with talking_to(settings, f"finishing run {run_id}"):
        mlflow.set_terminated(run_id, "FINISHED")
    return TrackedDecision(run_id, experiment, tagged, moved, note)


def finished_run(settings: MlflowSettings, entry_hash: str) -> str | None:
    """The id of a finished run that logged the decision with this hash, else None (the decision needs a sync)."""
    mlflow = client(settings)
    experiment = experiment_id(settings, mlflow)
    with talking_to(settings, "searching the decisions' runs"):
        runs = mlflow.search_runs(
            [experiment], filter_string=f"tags.`{HASH_TAG}` = '{entry_hash}' and attributes.status = 'FINISHED'"
        )
    return runs[0].info.run_id if runs else None


def ensure_run(settings: MlflowSettings, run_id: str | None, seq: int, decision: str) -> str:
    """``run_id`` when that run exists and is not deleted, else a new run for the decision."""
    if run_id:
        mlflow = client(settings)
        try:
            run = mlflow.get_run(run_id)
        except Exception:  # a missing run (a reset server): the decision gets a new one
            run = None
        if run is not None and run.info.lifecycle_stage != "deleted":
            return run_id
    return reserve_run(settings, seq, decision)
