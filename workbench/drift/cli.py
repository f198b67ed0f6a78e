"""CLI for drift: `workbench drift` between two windows of the store or two files (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from workbench.core.command import DbOption, JsonOption, emit, split_names
from workbench.core.errors import InputError
from workbench.core.window import Window, parse_window

if TYPE_CHECKING:
    from workbench.drift.result import DriftResult

commands = typer.Typer()  # mounted on `workbench` by workbench.cli


def _progress(as_json: bool) -> Any:
    def say(message: str) -> None:
        typer.echo(f"  {message}", err=True)

    return say


def format_result(result: DriftResult) -> str:
    """Plain-text report: the verdict, then one line per feature with its statistics side by side."""
    from workbench.drift.result import rate_lines

    lines = [
        result.verdict_text,
        f"reference: {result.reference['label']} ({result.reference['rows']:,} rows)   "
        f"current: {result.current['label']} ({result.current['rows']:,} rows)",
        "",
        f"{'feature':<18}{'type':<12}{'drift':<7}{'PSI':>8}{'JS':>8}{'W/σ':>8}{'test':>6}{'stat':>10}"
        f"{'p':>10}{'p adj':>10}  missing ref→cur",
    ]
    num = lambda v, f=".3f": "—" if v is None else format(v, f)  # noqa: E731
    for f in result.ordered:
        missing = f"{num(f.missing_share_reference, '.1%')}→{num(f.missing_share_current, '.1%')}"
        extra = f"  unseen: {', '.join(f.unseen_categories)}" if f.unseen_categories else ""
        lines.append(
            f"{f.name:<18}{f.type:<12}{('YES' if f.drift else 'no'):<7}{num(f.psi):>8}{num(f.js_distance):>8}"
            f"{num(f.wasserstein):>8}{f.test:>6}{num(f.statistic, '.4g'):>10}{num(f.p_value, '.2g'):>10}"
            f"{num(f.p_adjusted, '.2g'):>10}  {missing}{extra}"
        )
    rates = rate_lines(result)
    lines += ["\n" + rates[0], *rates[1:]] if rates else []
    mv = result.multivariate
    if mv and mv.get("auc") is not None:
        top = ", ".join(r["feature"] for r in mv["importance"][:3])
        lines.append(
            f"domain classifier AUC {mv['auc']:.3f} (95% CI {mv['ci_lower']:.3f}–{mv['ci_upper']:.3f}): "
            f"{'multivariate drift' if mv['drift'] else 'no multivariate drift'}; separating: {top}"
        )
    rc = result.reconstruction
    if rc:
        lines += ["", rc["verdict_text"], *(f"  {reason}" for reason in rc["reasons"])]
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)


@commands.command()
def drift(
    reference: Annotated[
        str | None, typer.Option(help="Reference window: START..END (ISO dates, inclusive), first:30d, last:7d, all.")
    ] = None,
    current: Annotated[str | None, typer.Option(help="Current window, same forms (e.g. last:7d).")] = None,
    reference_version: Annotated[
        list[str] | None, typer.Option(help="Model version(s) of the reference window (repeatable).")
    ] = None,
    current_version: Annotated[
        list[str] | None, typer.Option(help="Model version(s) of the current window (repeatable).")
    ] = None,
    reference_file: Annotated[Path | None, typer.Option(help="Reference file (CSV, Parquet, JSON Lines).")] = None,
    current_file: Annotated[Path | None, typer.Option(help="Current file (CSV, Parquet, JSON Lines).")] = None,
    categorical: Annotated[str | None, typer.Option(help="Columns to treat as categorical, a,b (files).")] = None,
    features: Annotated[str | None, typer.Option(help="Only these features, a,b.")] = None,
    html: Annotated[Path | None, typer.Option(help="Also write the standalone HTML report here.")] = None,
    html_cdn: Annotated[
        bool,
        typer.Option(help="Load plotly.js from its CDN in the HTML report (−4.8 MB; its charts then need the network)"),
    ] = False,
    html_offline: Annotated[
        bool, typer.Option(hidden=True, help="Kept for old scripts: the report is self-contained by default.")
    ] = False,
    over_time: Annotated[
        str | None, typer.Option(help="Add drift and performance over time by day, week or N rows (store only).")
    ] = None,
    multivariate: Annotated[
        bool, typer.Option(help="Run the domain classifier and the PCA reconstruction error (multivariate drift).")
    ] = True,
    chunk: Annotated[
        str | None,
        typer.Option(help="Chunks of the PCA reconstruction error: day, week or N rows (default: --over-time, day)."),
    ] = None,
    exit_code: Annotated[bool, typer.Option(help="Exit 1 when the dataset drifted (for a scheduler).")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Drift between a reference and a current window of the store, two files, or a reference file and a window.

    Numeric features: KS, PSI, Jensen–Shannon, normalised Wasserstein; categorical: chi-square, PSI,
    JS with unseen categories listed; missing shares; prediction, label and multivariate drift.
    """
    from workbench.drift.request import FILES, DriftRequest
    from workbench.drift.run import run
    from workbench.ingest.lake import open_store
    from workbench.sources.base import StoreSource
    from workbench.sources.evidence import record_once
    from workbench.sources.store_queries import store_bounds

    say = _progress(as_json)
    if (html_cdn or html_offline) and html is None:
        flag = "--html-cdn" if html_cdn else "--html-offline"
        raise InputError(f"{flag} needs --html FILE (the report it applies to)")
    if html_cdn and html_offline:
        raise InputError("give either --html-cdn or --html-offline, not both")
    on_reference, on_current = bool(reference or reference_version), bool(current or current_version)
    if reference_file and on_reference and not current_file and on_current:
        raise InputError("give either --reference-file or --reference/--reference-version, not both")
    if reference_file and current_file and (on_reference or on_current):
        raise InputError("compare either two files or two windows of the store, not both")
    store = open_store(db)
    bounds: list = []  # the store's first and last ts, read once when a window counts days from them

    def window(text: str | None, versions: list[str] | None) -> Window:
        if not bounds and (text or "").strip().startswith(("first:", "last:")):
            bounds.append(store_bounds(store))
        return parse_window(text, versions, bounds[0] if bounds else None)

    # a file on a side wins: the request names the mode's conflicts in the messages above and its own
    ref_side = reference_file or (window(reference, reference_version) if on_reference else None)
    cur_side = current_file or (window(current, current_version) if on_current else None)
    request = DriftRequest(
        ref_side, cur_side, tuple(split_names(features)), tuple(split_names(categorical)), multivariate, over_time,
        chunk,
    )  # fmt: skip
    result = run(StoreSource(store), request, progress=say)
    if request.mode != FILES or (db is not None and store.exists()):
        record_once(store, result, set())  # not on a lake or a read-only store
    if html is not None:
        from workbench.drift.report import html_report  # plotly only when a report is asked for

        html.write_text(
            html_report(result, result.over_time, result.performance, embed_plotlyjs=not html_cdn), encoding="utf-8"
        )
        say(f"HTML report written to {html}")
    emit(as_json, result.to_json(), format_result(result))
    if exit_code and result.summary["dataset_drift"]:
        raise typer.Exit(1)
