"""CLI for the Prometheus exporter: `workbench metrics serve` (HTTP /metrics) and `workbench metrics write FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from workbench.core.command import DbOption, JsonOption, emit
from workbench.core.errors import InputError

if TYPE_CHECKING:
    from workbench.metrics.collector import Readings
    from workbench.metrics.exporter import Exporter

metrics_app = typer.Typer(
    help="Publish the workbench's numbers to Prometheus: per model version accuracy, thumbs-up rate, coverage and "
    "label delay; quarantine by reason; PSI per feature; each rule's value, threshold and state.",
    no_args_is_help=True,
)
commands = typer.Typer()  # mounted on `workbench` by workbench.cli
commands.add_typer(metrics_app, name="metrics")

RulesOption = Annotated[
    Path | None, typer.Option(help="Rules TOML (as workbench check): each rule's value, threshold and state.")
]


def _exporter(db: Path | None, rules: Path | None) -> Exporter:
    """The exporter over the store ``db`` with ``rules``, its settings checked before anything is computed."""
    from workbench.ingest.lake import open_store
    from workbench.metrics.collector import check_rules, check_settings, collect
    from workbench.metrics.exporter import Exporter
    from workbench.metrics.settings import metrics_settings

    settings = metrics_settings()
    check_settings(settings)
    check_rules(rules)
    store = open_store(db)
    if not store.exists():
        raise InputError(f"no store at {store.path}: run `workbench demo` or `workbench ingest FILE` first")

    def report(readings: Readings) -> None:
        for section, message in readings.errors.items():
            typer.echo(f"error: metrics {section}: {message}", err=True)

    return Exporter(lambda: collect(store, rules, settings), settings.refresh_seconds, on_refresh=report)


@metrics_app.command()
def serve(
    port: Annotated[int, typer.Option(help="TCP port of /metrics (1-65535).")] = 9108,
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0: every interface; /metrics has no login of its own).")
    ] = "127.0.0.1",
    rules: RulesOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Serve /metrics in the Prometheus text format; the numbers are recomputed every [metrics] refresh_seconds
    (a scrape reads the last ones). Once listening it prints the address and the first numbers. Ctrl-C stops."""
    from workbench.metrics.exporter import serve as start
    from workbench.metrics.exporter import stop_serving, wait_forever

    if not 1 <= port <= 65535:
        raise InputError(f"--port must be a TCP port from 1 to 65535, not {port}")
    exporter = _exporter(db, rules)
    server, _ = start(exporter, port, host)
    first = exporter.readings
    assert first is not None  # serve computed them before listening
    url = f"http://{host}:{port}/metrics"
    emit(
        as_json,
        {"url": url, "refresh_seconds": exporter.refresh_seconds, **first.to_dict()},
        f"serving {url}; numbers {first.summary()}; recomputed every {exporter.refresh_seconds:g} s; Ctrl-C stops",
    )
    try:
        wait_forever()
    except KeyboardInterrupt:
        stop_serving(server, exporter)
        typer.echo("stopped", err=True)


@metrics_app.command()
def write(
    file: Annotated[Path, typer.Argument(help="Where to write, e.g. /var/lib/node_exporter/textfile/workbench.prom.")],
    rules: RulesOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compute the numbers once and write them in the textfile-collector format (node_exporter reads *.prom),
    through a temporary file renamed over FILE."""
    from workbench.metrics.exporter import write_textfile

    exporter = _exporter(db, rules)
    readings = exporter.refresh()
    write_textfile(exporter, file)
    note = "" if file.suffix == ".prom" else " (node_exporter's textfile collector reads only *.prom files)"
    emit(as_json, {"file": str(file), **readings.to_dict()}, f"wrote {file}{note}: {readings.summary()}")
