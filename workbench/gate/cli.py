"""CLI for the retrain gate: `workbench curate`, `workbench decide`, `workbench decisions export|verify|head|sync`.

`curate --out` is a local user's command and writes where it is told (the app confines its typed folders)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from workbench.core.command import DbOption, JsonOption, emit
from workbench.core.errors import InputError

decisions_app = typer.Typer(help="Read, export and verify the append-only decision log.", no_args_is_help=True)
commands = typer.Typer()  # mounted on `workbench` by workbench.cli
commands.add_typer(decisions_app, name="decisions")


@commands.command()
def curate(
    out: Annotated[Path, typer.Option(help="Folder for retraining_set.<format> and manifest.json.")],
    start: Annotated[str | None, typer.Option(help="Prediction ts from (ISO date/time, UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="Prediction ts before (ISO date/time, UTC).")] = None,
    model_version: Annotated[list[str] | None, typer.Option(help="Keep these model versions (repeatable).")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Labels from these feedback kinds only (repeatable).")] = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Labels from these feedback types only.")] = None,
    labelled_only: Annotated[
        bool, typer.Option("--labelled-only/--include-unlabelled", help="Keep only rows with a label.")
    ] = True,
    implicit_labels: Annotated[
        bool, typer.Option(help="Label unlabelled traces from clicks/dwell where that pattern agreed with the truth.")
    ] = False,
    min_implicit_confidence: Annotated[
        float, typer.Option(help="Minimum measured agreement of an implicit pattern with the ground truth.")
    ] = 0.8,
    conflicts: Annotated[str, typer.Option(help="Conflicting labels for one trace: drop or majority.")] = "drop",
    dedupe: Annotated[bool, typer.Option(help="Drop rows with identical features, groups and label.")] = True,
    outlier_z: Annotated[float, typer.Option(help="Exclude rows with |modified z| above this; 0 keeps all.")] = 5.0,
    rebalance: Annotated[str | None, typer.Option(help="Sensitive attribute to rebalance on.")] = None,
    method: Annotated[
        str, typer.Option(help="oversample (to --target shares) or reweigh (sample_weight).")
    ] = "oversample",
    target: Annotated[
        str | None, typer.Option(help="Target shares, e.g. north=0.25,south=0.25 (default: equal).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for oversampling and capping.")] = 0,
    merge: Annotated[Path | None, typer.Option(help="Existing training set (Parquet or CSV) to merge with.")] = None,
    max_feedback_share: Annotated[float | None, typer.Option(help="Cap on feedback-derived rows when merging.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    created_by: Annotated[str | None, typer.Option(help="Name recorded in the manifest.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export a curated retraining set (predictions joined with their labels) and its manifest."""
    from workbench.gate.curate import parse_shares, run
    from workbench.gate.request import REBALANCE_METHODS, CurationRequest, CurationSpec
    from workbench.ingest.lake import open_store

    if method not in REBALANCE_METHODS:
        raise InputError(f"--method must be oversample or reweigh, not '{method}'")
    spec = CurationSpec(
        start=start,
        end=end,
        model_versions=tuple(model_version or ()),
        feedback_kinds=tuple(kind or ()),
        feedback_types=tuple(type_ or ()),
        labelled_only=labelled_only,
        implicit_labels=implicit_labels,
        min_implicit_confidence=min_implicit_confidence,
        conflict_policy=conflicts,  # type: ignore[arg-type]
        dedupe_features=dedupe,
        outlier_z=outlier_z or None,
        rebalance_attribute=rebalance,
        rebalance_method=method if rebalance else None,  # type: ignore[arg-type]
        target_shares=parse_shares(target),
        seed=seed,
        merge_file=str(merge) if merge else None,
        max_feedback_share=max_feedback_share,
    )
    result = run(open_store(db), CurationRequest(spec, out, fmt, created_by))
    emit(as_json, result.to_json(), result.verdict_text + "\n  " + ", ".join(result.reasons))


@commands.command()
def decide(
    decision: Annotated[str, typer.Option(help="approve, reject or defer.")],
    reviewer: Annotated[str, typer.Option(help="Who decides.")],
    rationale: Annotated[str, typer.Option(help="Why, in a sentence.")],
    candidate: Annotated[str | None, typer.Option(help="The model version under decision.")] = None,
    dataset: Annotated[Path | None, typer.Option(help="manifest.json of the retraining set.")] = None,
    override_reason: Annotated[str | None, typer.Option(help="Approve despite a blocking gate, recorded.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a retrain decision with the evidence snapshot in the hash-chained log; with MLflow on (settings
    [mlflow] or $MLFLOW_TRACKING_URI) log it as a run too (a failure there is one line on stderr and exit 0: the
    decision is kept, `workbench decisions sync` retries)."""
    from workbench.gate.tracked import DecisionForm, record
    from workbench.sources.store import Store

    manifest, data_path = None, None
    if dataset is not None:
        try:
            manifest = json.loads(dataset.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(f"{dataset}: not a readable manifest.json") from None
        written = dataset.parent / f"retraining_set.{manifest.get('format', 'parquet')}"
        data_path = written if written.is_file() else None
    form = DecisionForm(decision, reviewer, rationale, candidate, manifest, override_reason, data_path)
    outcome = record(Store(db), form)
    entry = outcome.entry
    text = f"decision {entry.seq} recorded: {entry.decision} by {entry.reviewer} ({entry.hash[:12]}…)"
    if outcome.tracked:
        text += "\n  " + (outcome.mlflow_line() or "")
    emit(as_json, outcome.to_dict(), text)
    if outcome.failure:
        typer.echo(outcome.mlflow_line(), err=True)


@decisions_app.command("sync")
def decisions_sync(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Log to MLflow every decision without a finished run (its MLflow step failed, or it predates MLflow here);
    exit 1 when one still fails."""
    from workbench.gate.tracked import sync
    from workbench.sources.store import Store

    outcomes = sync(Store(db))
    lines = [f"decision {o.entry.seq}: {o.mlflow_line()}" for o in outcomes] or ["every decision is in MLflow"]
    emit(as_json, {"synced": [o.to_dict() for o in outcomes]}, "\n".join(lines))
    if any(o.failure for o in outcomes):
        raise typer.Exit(1)


@decisions_app.command("verify")
def decisions_verify(
    kept_head: Annotated[
        str | None,
        typer.Option("--head", help="SEQ:HASH kept from `decisions head`: the log must still hold that entry."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the hash chain (and each MAC with $WORKBENCH_DECISION_KEY); exit 1 naming the first bad entry when a
    row was edited, deleted, reordered or rewritten, or the kept head is gone."""
    from workbench.gate.decisions import describe, verify
    from workbench.sources.store import Store

    check = verify(Store(db), head=kept_head)
    emit(as_json, check.to_dict(), describe(check))
    if not check.ok:
        raise typer.Exit(1)


@decisions_app.command("head")
def decisions_head(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Print the newest entry as SEQ:HASH, to keep outside the store and check later with `verify --head`."""
    from workbench.gate.decisions import head
    from workbench.sources.store import Store

    doc = head(Store(db))
    emit(as_json, doc, doc["head"])


@decisions_app.command("export")
def decisions_export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl, csv or md (an audit report).")] = "jsonl",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
    db: DbOption = None,
) -> None:
    """Export the decision log as JSON Lines, CSV or a Markdown audit report."""
    from workbench.gate.decisions import export as export_log
    from workbench.sources.store import Store

    text = export_log(Store(db), fmt)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
