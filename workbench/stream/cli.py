"""CLI for the feedback stream: `workbench check` (retraining triggers) and `workbench simulate` (live mode)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from workbench.core.command import DbOption, JsonOption, emit
from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.sources.store import Store

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
    """Evaluate retraining triggers now; exit 1 when the rule set fires (for cron or an Airflow task)."""
    from workbench.sources.evidence import record_run
    from workbench.stream.triggers import check as evaluate
    from workbench.stream.triggers import load_rules

    store = Store(db)
    rule_set = load_rules(rules)
    window = Window(_moment(start, "--start"), _moment(end, "--end"), tuple(model_version or ()))
    result = evaluate(store, rule_set, None if window == Window() else window)
    lines = [r.sentence() for r in result.rules] + [g.sentence() for g in result.groups]
    lines.append(result.verdict_text())
    record_run(store, "triggers", *result.evidence())
    emit(as_json, result.to_dict(with_series=backtest), "\n".join(lines))
    if result.fired:
        raise typer.Exit(1)


def _moment(text: str | None, option: str) -> datetime | None:
    """An ISO date or date-time as an aware UTC datetime (naive means UTC)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{option} must be an ISO date or date-time, e.g. 2026-03-01, not '{text}'") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
    from workbench.demo.simulate import simulate as run

    def show(report: SimulationReport) -> None:
        typer.echo(
            f"  batch {report.batches}: {report.predictions:,} predictions, {report.feedback:,} feedback "
            f"written; {report.pending_feedback:,} feedback pending",
            err=True,
        )

    report = run(Store(db), rate, duration, interval, seed, speed, on_batch=show)
    emit(
        as_json,
        report.to_dict(),
        f"wrote {report.predictions:,} predictions and {report.feedback:,} feedback rows in {report.batches} "
        f"batches (stream now at {report.stream_end}); {report.pending_feedback:,} feedback rows were not due yet"
        + (f"; {report.quarantined:,} rows quarantined" if report.quarantined else ""),
    )
