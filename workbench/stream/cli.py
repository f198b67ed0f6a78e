"""CLI for the feedback stream: `workbench check` (retraining triggers) and `workbench simulate` (live mode)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.core.command import DbOption, JsonOption, emit

commands = typer.Typer()  # mounted on `workbench` by workbench.cli


@commands.command()
def check(
    rules: Annotated[Path, typer.Option(help="Rules TOML (see rules.example.toml and the README).")],
    backtest: Annotated[bool, typer.Option(help="Include each rule's per-bucket series in the JSON.")] = False,
    start: Annotated[str | None, typer.Option(help="Only predictions from this ISO date/time (UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="Only predictions before this ISO date/time (UTC).")] = None,
    model_version: Annotated[list[str] | None, typer.Option(help="Only these model versions (repeatable).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate retraining triggers now (for cron or an Airflow task): exit 1 when the rule set fires, else 2 when
    a rule could not be evaluated on this store (named on stderr; the other rules are still evaluated), else 0."""
    from workbench.ingest.lake import open_store
    from workbench.sources.evidence import record_once
    from workbench.stream.request import CheckRequest
    from workbench.stream.triggers import run

    store = open_store(db)
    request = CheckRequest.from_options(rules, start, end, model_version or (), backtest)
    result = run(store, request)
    lines = [r.sentence() for r in result.rules] + [g.sentence() for g in result.groups]
    lines.append(result.verdict_text)
    record_once(store, result, set())  # not on a lake or a read-only store
    emit(as_json, result.to_json(with_series=request.backtest), "\n".join(lines))
    if result.fired:
        raise typer.Exit(1)
    if result.errors:
        typer.echo(f"error: {result.errors_sentence()}", err=True)
        raise typer.Exit(2)


@commands.command()
def simulate(
    rate: Annotated[float, typer.Option(help="Predictions per second.")] = 20.0,
    duration: Annotated[float | None, typer.Option(help="Seconds to run (default: until Ctrl-C).")] = None,
    speed: Annotated[float, typer.Option(help="Stream seconds per wall-clock second (3600: an hour a second).")] = 1.0,
    interval: Annotated[float, typer.Option(help="Seconds between batches (one transaction each).")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible events.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Append realistic predictions and their (delayed) feedback to the store continuously (Ctrl-C stops)."""
    from workbench.demo.simulate import SimulationReport
    from workbench.demo.simulate import simulate as run_simulation
    from workbench.sources.store import Store

    def show(report: SimulationReport) -> None:
        typer.echo(
            f"  batch {report.batches}: {report.predictions:,} predictions, {report.feedback:,} feedback "
            f"written; {report.pending_feedback:,} feedback pending",
            err=True,
        )

    report = run_simulation(Store(db), rate, duration, interval, seed, speed, on_batch=show)
    emit(
        as_json,
        report.to_dict(),
        f"wrote {report.predictions:,} predictions and {report.feedback:,} feedback rows in {report.batches} "
        f"batches (stream now at {report.stream_end}); {report.pending_feedback:,} feedback rows were not due yet"
        + (f"; {report.quarantined:,} rows quarantined" if report.quarantined else ""),
    )
