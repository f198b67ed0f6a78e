"""CLI for drift: `workbench drift` between two windows of the store or two files (DESIGN.md's contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.core.command import DbOption, JsonOption, emit
from workbench.core.errors import InputError
from workbench.sources.store import Store

commands = typer.Typer()  # mounted on `workbench` by workbench.cli


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def _progress(as_json: bool) -> Any:
    def say(message: str) -> None:
        typer.echo(f"  {message}", err=True)

    return say


def format_result(result: Any) -> str:
    """Plain-text report: the verdict, then one line per feature with its statistics side by side."""
    lines = [
        result.verdict_text,
        f"reference: {result.reference['label']} ({result.reference['rows']:,} rows)   "
        f"current: {result.current['label']} ({result.current['rows']:,} rows)",
        "",
        f"{'feature':<18}{'type':<12}{'drift':<7}{'PSI':>8}{'JS':>8}{'W/σ':>8}{'test':>6}{'stat':>10}"
        f"{'p':>10}{'p adj':>10}  missing ref→cur",
    ]
    num = lambda v, f=".3f": "—" if v is None else format(v, f)  # noqa: E731
    for f in sorted(result.features, key=lambda f: (not f.drift, -(f.psi or 0))):
        missing = f"{num(f.missing_share_reference, '.1%')}→{num(f.missing_share_current, '.1%')}"
        extra = f"  unseen: {', '.join(f.unseen_categories)}" if f.unseen_categories else ""
        lines.append(
            f"{f.name:<18}{f.type:<12}{('YES' if f.drift else 'no'):<7}{num(f.psi):>8}{num(f.js_distance):>8}"
            f"{num(f.wasserstein):>8}{f.test:>6}{num(f.statistic, '.4g'):>10}{num(f.p_value, '.2g'):>10}"
            f"{num(f.p_adjusted, '.2g'):>10}  {missing}{extra}"
        )
    if result.prediction_drift and "positive_rate" in result.prediction_drift:
        pr = result.prediction_drift["positive_rate"]
        lines.append(f"\npredicted-positive rate {num(pr['reference'], '.1%')} → {num(pr['current'], '.1%')}")
    if result.label_drift:
        ld = result.label_drift
        lines.append(f"label rate (feedback) {num(ld['reference'], '.1%')} → {num(ld['current'], '.1%')}")
    mv = result.multivariate
    if mv and mv.get("auc") is not None:
        top = ", ".join(r["feature"] for r in mv["importance"][:3])
        lines.append(
            f"domain classifier AUC {mv['auc']:.3f} (95% CI {mv['ci_lower']:.3f}–{mv['ci_upper']:.3f}): "
            f"{'multivariate drift' if mv['drift'] else 'no multivariate drift'}; separating: {top}"
        )
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
    html_offline: Annotated[
        bool, typer.Option(help="Embed plotly.js in the HTML report (+4.8 MB): it then opens with no network.")
    ] = False,
    over_time: Annotated[
        str | None, typer.Option(help="Add drift and performance over time by day, week or N rows (store only).")
    ] = None,
    multivariate: Annotated[bool, typer.Option(help="Run the domain classifier (multivariate drift).")] = True,
    exit_code: Annotated[bool, typer.Option(help="Exit 1 when the dataset drifted (for a scheduler).")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Drift between a reference and a current window of the store, two files, or a reference file and a window.

    Numeric features: KS, PSI, Jensen–Shannon, normalised Wasserstein; categorical: chi-square, PSI,
    JS with unseen categories listed; missing shares; prediction, label and multivariate drift.
    """
    from workbench.core.window import parse_window
    from workbench.drift.compare import compare
    from workbench.drift.files import compare_file_to_window, compare_files
    from workbench.drift.report import html_report
    from workbench.sources.store_queries import store_bounds

    say = _progress(as_json)
    if html_offline and html is None:
        raise InputError("--html-offline needs --html FILE (the report it embeds plotly.js in)")
    if reference_file and not current_file and (current or current_version):
        # the reference training set (a file) against a window of the store
        if reference or reference_version:
            raise InputError("give either --reference-file or --reference/--reference-version, not both")
        store = Store(db)
        cur_window = parse_window(current, current_version, store_bounds(store))
        result = compare_file_to_window(
            reference_file, store, cur_window, _names(features), _names(categorical), multivariate=multivariate,
            progress=say,
        )  # fmt: skip
        over, perf = None, None
        _record(store, result)
    elif reference_file or current_file:
        if not (reference_file and current_file):
            raise InputError(
                "give both --reference-file and --current-file, or --reference-file with --current (a store window)"
            )
        if reference or current or reference_version or current_version:
            raise InputError("compare either two files or two windows of the store, not both")
        result = compare_files(
            reference_file, current_file, _names(features), _names(categorical), multivariate=multivariate,
            progress=say,
        )  # fmt: skip
        over, perf = None, None
        store = Store(db)
        if db is not None and store.exists():
            _record(store, result)
    else:
        if not (reference or current or reference_version or current_version):
            raise InputError("give --reference and --current (windows of the store) or --reference-file/--current-file")
        if categorical:
            raise InputError("--categorical applies to files; the store's roles say which features are categorical")
        store = Store(db)
        bounds = store_bounds(store)
        ref_window = parse_window(reference, reference_version, bounds)
        cur_window = parse_window(current, current_version, bounds)
        result = compare(store, ref_window, cur_window, _names(features), multivariate=multivariate, progress=say)
        over, perf = None, None
        if over_time:
            from workbench.drift.over_time import drift_over_time, estimated_performance

            say(f"over time by {over_time}")
            over = drift_over_time(store, ref_window, over_time, None, _names(features))
            perf = estimated_performance(store, ref_window, over_time, None)
        _record(store, result)
    if html is not None:
        html.write_text(html_report(result, over, perf, embed_plotlyjs=html_offline), encoding="utf-8")
        say(f"HTML report written to {html}")
    document = result.to_dict(with_distribution=False)
    if over is not None:
        document["over_time"] = over.to_dict()
        document["performance"] = perf.to_dict() if perf is not None else None
    emit(as_json, document, format_result(result))
    if exit_code and result.summary["dataset_drift"]:
        raise typer.Exit(1)


def _record(store: Store, result: Any) -> None:
    from workbench.sources.evidence import record_run

    record_run(store, "drift", result.verdict, result.run_summary())
