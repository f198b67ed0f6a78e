"""The `workbench` command line: one command per capability, ``--json`` everywhere.

Exit codes (docs/ARCHITECTURE.md, "The CLI contract"): 0 ran, 1 a finding a scheduler should act on,
2 bad input or usage, with a one-line message on stderr and no traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.core.command import DbOption, JsonOption, emit
from workbench.core.errors import InputError, WorkbenchError
from workbench.sources.store import Store

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Feedback Workbench: drift, A/B and fairness analysis of a production model's feedback loop.",
)


@app.callback()
def _global_options(
    settings: Annotated[
        Path | None,
        typer.Option(
            "--settings",
            help="Settings TOML (\\[drift], \\[abtest], \\[fairness], \\[stream], \\[ingest], \\[metrics]); "
            "default: $WORKBENCH_SETTINGS or ./settings.toml. Put it before the command: "
            "workbench --settings s.toml drift …",
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Where the data is: a store file (default: $WORKBENCH_SOURCE, $WORKBENCH_DB or "
            "data/workbench.duckdb) or lake:DIR (Parquet folders DIR/predictions/, DIR/feedback/ and DIR/roles.toml, "
            "read in place). Put it before the command: workbench --source lake:/data/lake drift …",
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="What runs the queries of a lake folder: duckdb (default: $WORKBENCH_ENGINE or duckdb) or spark "
            "(local mode, or the cluster at $WORKBENCH_SPARK_REMOTE=sc://host:port through Spark Connect). "
            "Put it before the command: workbench --source lake:/data/lake --engine spark drift …",
        ),
    ] = None,
) -> None:
    """Options for every command (the settings file is read by each analysis through $WORKBENCH_SETTINGS)."""
    if source is not None:
        from workbench.ingest.lake import SOURCE_ENV

        os.environ[SOURCE_ENV] = source
    if engine is not None:
        from workbench.sources.spark import ENGINE_ENV, engine_name

        os.environ[ENGINE_ENV] = engine_name(engine)
    if settings is not None:
        from workbench.core.settings import SETTINGS_ENV

        if not settings.is_file():
            raise InputError(f"settings file {settings} does not exist")
        os.environ[SETTINGS_ENV] = str(settings)


@app.command()
def demo(
    rows: Annotated[int, typer.Option(help="Number of predictions.")] = 300_000,
    days: Annotated[int, typer.Option(help="Days in production.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same rows.")] = 7,
    lake: Annotated[
        Path | None, typer.Option(help="Also write the scenario as a lake folder here (Parquet, by day).")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build the demo store with known injected drift, bias and A/B lift (ground_truth.json)."""
    from workbench.demo.scenario import Scenario, build_demo

    store = Store(db)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if total > done or total > 1_000_000:  # only worth a line when there is more than one chunk
            typer.echo(f"  {done:,} / {total:,} predictions written", err=True)

    truth = build_demo(store, Scenario(rows=rows, days=days, seed=seed), progress=progress)
    lake_note = {}
    if lake is not None:
        from workbench.ingest.lake import export_lake

        lake_note = {"lake": str(export_lake(store, lake))}
    seconds = time.perf_counter() - started
    truth_path = store.path.parent / "demo" / "ground_truth.json"
    emit(
        as_json,
        {"db": str(store.path), "ground_truth": str(truth_path), "seconds": round(seconds, 2), **lake_note, **truth},
        f"demo store {store.path}: {truth['predictions']:,} predictions, {truth['feedback_rows']:,} feedback "
        f"rows over {days} days in {seconds:.1f} s; ground truth in {truth_path}"
        + (f"; the same rows as a lake in {lake}" if lake is not None else ""),
    )


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="CSV, Parquet or JSON Lines files, optionally .gz.")],
    table: Annotated[
        str | None, typer.Option(help="predictions or feedback (default: inferred from the columns).")
    ] = None,
    roles: Annotated[Path | None, typer.Option(help="Roles TOML mapping your column names.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate and append files in one transaction; rejected rows go to quarantine with a reason."""
    from workbench.core.schema import load_roles
    from workbench.ingest.pipeline import ingest_files, total

    if table is not None and table not in ("predictions", "feedback"):
        raise InputError(f"--table must be predictions or feedback, not '{table}'")
    parsed_roles = load_roles(roles) if roles else None
    results = ingest_files(Store(db), list(files), table, parsed_roles)
    document = total(results)
    lines = [
        f"{r.source} → {r.table}: {r.accepted:,} accepted, {r.duplicates:,} duplicates, "
        f"{r.quarantined:,} quarantined" + "".join(f"\n  {n:,} × {reason}" for reason, n in r.reasons.items())
        for r in results
    ]
    emit(as_json, document, "\n".join(lines))


@app.command()
def info(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Summarise the store: row counts, time range, model versions, feedback coverage, quarantine."""
    from workbench.ingest.lake import open_store
    from workbench.sources.store_queries import store_summary

    summary = store_summary(open_store(db))
    emit(as_json, summary.to_dict(), format_summary(summary))


@app.command()
def validate(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Run the ingest's rules over a lake folder (--source lake:DIR) and count what they would quarantine."""
    from workbench.ingest.lake import LakeStore, open_store, validation_report

    store = open_store(db)
    if not isinstance(store, LakeStore):
        raise InputError("validate reads a lake folder (--source lake:DIR); a store's rejects are in its quarantine: "
                         "workbench info")  # fmt: skip
    report = validation_report(store)
    lines = [f"{report['source']}: " + ", ".join(f"{n:,} valid {t}" for t, n in report["valid"].items())]
    for table, reasons in report["reasons"].items():
        lines += [f"  {table}: {n:,} × {reason}" for reason, n in reasons.items()]
    text = "\n".join(lines) if report["reasons"] else lines[0] + "; nothing to quarantine"
    for table, n in report["duplicates"].items():
        text += f"\n  {table}: {n:,} identical copies counted once (the ingest's duplicates)" if n else ""
    linked, n = report["feedback"], report["valid"]["predictions"]
    with_any, labelled = (
        _pct(linked[k] / n if n else None) for k in ("predictions_with_feedback", "predictions_labelled")
    )
    text += (f"\n  feedback: {linked['orphans']:,} rows name no prediction (orphans); predictions with feedback "
             f"{with_any}, with a label {labelled}")  # fmt: skip
    emit(as_json, report, text)


def _pct(share: float | None) -> str:
    """A share as a percentage with one decimal, or n/a."""
    return "n/a" if share is None else f"{100 * share:.1f}%"


def format_summary(summary: Any) -> str:
    """Plain-text store summary for the terminal."""
    versions = ", ".join(f"{v['model_version']} ({v['n']:,})" for v in summary.model_versions) or "none"
    kinds = ", ".join(f"{k} {n:,}" for k, n in summary.feedback_by_kind.items()) or "none"
    lines = [
        f"store        {summary.path}",
        f"predictions  {summary.predictions:,}  from {summary.first_ts} to {summary.last_ts}",
        f"versions     {versions}",
        f"feedback     {summary.feedback:,}  ({kinds}); orphan {summary.orphan_feedback:,}",
        f"coverage     any feedback {_pct(summary.coverage_any)}, labelled {_pct(summary.coverage_labelled)}",
        f"quarantine   {summary.quarantined:,}"
        + "".join(f"\n  {n:,} × {reason}" for reason, n in summary.quarantine_by_reason.items()),
    ]
    return "\n".join(lines)


# Capability commands live in their own modules (workbench/<capability>/cli.py) and register on `app` when
# imported; one name per capability, sorted.
CAPABILITIES = ("abtest", "drift", "fairness", "gate", "metrics", "quality", "stream")
for _capability in CAPABILITIES:
    _commands = importlib.import_module(f"workbench.{_capability}.cli").commands
    app.registered_commands += _commands.registered_commands
    app.registered_groups += _commands.registered_groups


def main() -> None:
    """Console entry point: run the app, turning project errors into one line and exit code 2."""
    import duckdb

    try:
        code = app(standalone_mode=False)  # returns the code of a `typer.Exit` in non-standalone mode
    except WorkbenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except duckdb.Error as exc:
        from workbench.sources.store import database_message

        typer.echo(f"error: database: {database_message(exc)}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.exceptions.TyperException as exc:  # usage: unknown option, bad value, missing argument
        typer.echo(f"usage error: {exc}  (see `workbench --help`)", err=True)
        sys.exit(2)
    except Exception as exc:  # anything unforeseen: still one line, never a traceback
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    # Run through the imported module so capability commands register on the same `app`.
    from workbench.cli import main as _main

    _main()
