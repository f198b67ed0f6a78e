"""CLI for model quality: `workbench quality` on the store (builds a QualityRequest, calls run, records the verdict
for the retrain gate)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from workbench.core.command import DbOption, JsonOption, emit, split_names

if TYPE_CHECKING:
    from workbench.quality.result import QualityReport

commands = typer.Typer()  # mounted on `workbench` by workbench.cli


def _number(value: float | None, fmt: str = ".3f") -> str:
    return "—" if value is None or value != value else format(value, fmt)


def format_report(report: QualityReport) -> str:
    """The report for the terminal: the verdict, each metric against the reference and its CBPE estimate, the
    confusion matrix and calibration per model version, and the chunks where the realised F1 left its band."""
    from workbench.quality.request import METRIC_NAMES

    w, r = report.window, report.reference
    lines = [
        report.verdict_text,
        f"window: {w['label']} ({w['rows']:,} predictions, {w['labelled']:,} labelled)   "
        f"reference: {r['label']} ({r['rows']:,}, {r['labelled']:,} labelled)",
        "",
        f"{'metric':<10}{'window':>9}{'reference':>11}{'threshold':>11}{'estimated':>11}  dropped",
    ]
    for c in report.comparisons:
        lines.append(
            f"{METRIC_NAMES[c['metric']]:<10}{_number(c['current']):>9}{_number(c['reference']):>11}"
            f"{_number(c['threshold']):>11}{_number(c['estimated']):>11}  {'YES' if c['dropped'] else 'no'}"
        )
    lines.append("")
    for v in report.versions:
        c, m = v["confusion"], v["metrics"]
        lines.append(
            f"{v['model_version']}: {v['labelled']:,} labelled  TP {c['tp']:,.0f} FP {c['fp']:,.0f} FN {c['fn']:,.0f} "
            f"TN {c['tn']:,.0f}  PR AUC {_number(m['pr_auc'])}  ECE {_number(m['ece'])}  Brier {_number(m['brier'])}"
        )
    left = [str(row["chunk"])[:10] for row in report.chunk_records() if row.get("within_band_f1") is False]
    if left:
        lines.append(f"realised F1 outside its CBPE band in the chunks starting {', '.join(left)}")
    lines += [f"warning: {text}" for text in report.warnings]
    return "\n".join(lines)


@commands.command()
def quality(
    window: Annotated[
        str, typer.Option(help="Window to report on: START..END (ISO dates, inclusive), first:30d, last:7d, all.")
    ] = "last:30d",
    reference: Annotated[
        str, typer.Option(help="Reference the window is held to and the calibration fitted on (same forms).")
    ] = "first:30d",
    model_version: Annotated[
        list[str] | None, typer.Option(help="Only these model versions (repeatable; both sides).")
    ] = None,
    chunk: Annotated[str, typer.Option(help="Over time: day, week or a number of rows (≥ 100).")] = "week",
    exit_code: Annotated[bool, typer.Option(help="Exit 1 when the verdict is dropped (for a scheduler).")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Model quality once labels arrive: confusion matrix, accuracy, precision, recall, F1, ROC and PR AUC,
    calibration (reliability, ECE, Brier) per model version, and realised vs estimated (CBPE) per chunk.
    """
    from workbench.ingest.lake import open_store
    from workbench.quality.request import QualityRequest
    from workbench.quality.run import run
    from workbench.sources.base import StoreSource
    from workbench.sources.evidence import record_once

    request = QualityRequest(
        window=window, reference=reference, model_versions=tuple(split_names(model_version)), chunk=chunk
    )
    store = open_store(db)
    report = run(StoreSource(store), request)
    record_once(store, report, set())  # not on a lake or a read-only store
    emit(as_json, report.to_json(), format_report(report))
    if exit_code and report.verdict == "dropped":
        raise typer.Exit(1)
