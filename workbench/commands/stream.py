"""CLI for the feedback stream: `workbench check` (retraining triggers) and `workbench simulate` (live mode)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli import DbOption, JsonOption, app, emit
from workbench.store import Store


@app.command()
def check(
    rules: Annotated[Path, typer.Option(help="Rules TOML (see rules.example.toml).")],
    backtest: Annotated[bool, typer.Option(help="Include each rule's per-bucket series in the JSON.")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate retraining triggers now; exit 1 when the rule set fires (for cron or an Airflow task)."""
    from workbench.evidence import record_run
    from workbench.triggers import check as evaluate
    from workbench.triggers import load_rules

    store = Store(db)
    result = evaluate(store, load_rules(rules))
    lines = []
    for r in result.rules:
        value = "n/a" if r.value is None else f"{r.value:.4g}"
        state = f"FIRED since {r.since}" if r.fired else "ok"
        lines.append(f"{r.name:<28} {r.metric} = {value} ({r.op} {r.threshold:g} for {r.persistence}) → {state}")
    lines += [
        f"{g['name']:<28} group {g['mode']} of {', '.join(g['rules'])} → {'FIRED' if g['fired'] else 'ok'}"
        for g in result.groups
    ]
    lines.append("retrain trigger FIRED" if result.fired else "no trigger fired")
    fired = [r.name for r in result.rules if r.fired] + [g["name"] for g in result.groups if g["fired"]]
    verdict_text = f"fired: {', '.join(fired)}" if result.fired else "no trigger fired"
    record_run(store, "triggers", "fired" if result.fired else "quiet", {"verdict_text": verdict_text, "fired": fired})
    emit(as_json, result.to_dict(with_series=backtest), "\n".join(lines))
    if result.fired:
        raise typer.Exit(1)


@app.command()
def simulate(
    rate: Annotated[float, typer.Option(help="Predictions per second.")] = 20.0,
    duration: Annotated[float | None, typer.Option(help="Seconds to run (default: until Ctrl-C).")] = None,
    speed: Annotated[float, typer.Option(help="Stream seconds per wall-clock second (3600: an hour a second).")] = 1.0,
    interval: Annotated[float, typer.Option(help="Seconds between batches (one transaction each).")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible events.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Append realistic predictions and their (delayed) feedback to the store continuously."""
    from workbench.simulate import SimulationReport
    from workbench.simulate import simulate as run

    def show(report: SimulationReport) -> None:
        typer.echo(
            f"  batch {report.batches}: {report.predictions:,} predictions, {report.feedback:,} feedback "
            f"written; {report.pending_feedback:,} feedback pending",
            err=True,
        )

    try:
        report = run(Store(db), rate, duration, interval, seed, speed, on_batch=show)
    except KeyboardInterrupt:  # Ctrl-C ends a run without duration; the last batch committed or rolled back
        typer.echo("stopped", err=True)
        return
    emit(
        as_json,
        report.to_dict(),
        f"wrote {report.predictions:,} predictions and {report.feedback:,} feedback rows "
        f"in {report.batches} batches; {report.pending_feedback:,} feedback rows were not due yet",
    )
