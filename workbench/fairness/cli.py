"""CLI for the fairness audit: `workbench fairness` on the store or on a file (builds a FairnessRequest, calls run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.core.command import DbOption, JsonOption, emit, split_names
from workbench.core.errors import InputError

commands = typer.Typer()  # mounted on `workbench` by workbench.cli


@commands.command()
def fairness(
    sensitive: Annotated[str, typer.Option(help="Sensitive attribute(s), a[,b]: several = their intersections.")],
    file: Annotated[Path | None, typer.Option("--file", help="Audit this CSV/Parquet/JSON Lines file.")] = None,
    label: Annotated[str | None, typer.Option(help="File mode: the label column (0/1; empty = unlabelled).")] = None,
    prediction: Annotated[str | None, typer.Option(help="File mode: the prediction column (0/1).")] = None,
    score: Annotated[str | None, typer.Option(help="File mode: the score column (probability of 1).")] = None,
    ts: Annotated[str | None, typer.Option("--ts", help="File mode: a timestamp column (disparity over time).")] = None,
    version_col: Annotated[str | None, typer.Option(help="File mode: a model-version column.")] = None,
    reference_group: Annotated[
        str | None, typer.Option(help="Reference group (default: the largest), e.g. north or '18-25 × north'.")
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="Store mode: START..END (ISO dates, inclusive), first:30d, last:7d, all.")
    ] = None,
    model_version: Annotated[
        list[str] | None, typer.Option(help="Store mode: only these model versions (repeatable).")
    ] = None,
    champion: Annotated[str | None, typer.Option(help="Champion version (default: the one serving first).")] = None,
    challenger: Annotated[str | None, typer.Option(help="Challenger version (default: the newest).")] = None,
    population: Annotated[
        Path | None, typer.Option(help="Reference population shares: CSV 'group,share' or TOML [population].")
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Rates that decide the verdict (default from settings: selection_rate,tpr,fpr).")
    ] = None,
    resamples: Annotated[int | None, typer.Option(help="Bootstrap resamples for the disparity intervals.")] = None,
    chunk: Annotated[str | None, typer.Option(help="Time chunk of the disparity over time: day or week.")] = None,
    compare_versions: Annotated[
        bool, typer.Option(help="Every model version on accuracy vs --disparity, with the Pareto front.")
    ] = False,
    disparity: Annotated[
        str, typer.Option(help="The disparity of --compare-versions (a between-groups difference).")
    ] = "equalized_odds_difference",
    mitigate: Annotated[
        str | None,
        typer.Option(help="Preview ThresholdOptimizer post-processing: demographic_parity or equalized_odds."),
    ] = None,
    thresholds_csv: Annotated[
        Path | None, typer.Option(help="With --mitigate: write the group thresholds as CSV here.")
    ] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write the group table as CSV here.")] = None,
    exit_code: Annotated[bool, typer.Option(help="Exit 1 when the verdict is fail (for a scheduler).")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Audit group fairness: rates with CIs per group, fairlearn's disparities, each group vs the reference
    (z-test, Holm), representation of the labelled feedback, disparity over time, champion vs challenger;
    with --compare-versions and --mitigate the trade-offs (a preview of post-processing, not a retrained model).
    """
    from workbench.fairness.request import FairnessRequest
    from workbench.fairness.run import run
    from workbench.ingest.lake import open_store
    from workbench.sources.base import FileSource, StoreSource
    from workbench.sources.evidence import record_once

    request = FairnessRequest(
        sensitive=tuple(split_names(sensitive)),
        window=window,
        model_versions=tuple(model_version or ()),
        champion=champion,
        challenger=challenger,
        reference_group=reference_group,
        population=population,
        metrics=tuple(split_names(metrics)),
        resamples=resamples,
        chunk=chunk,
        path=file,
        label=label,
        prediction=prediction,
        score=score,
        ts=ts,
        version_col=version_col,
        compare_versions=compare_versions,
        disparity=disparity,
        mitigate=mitigate,
    )
    if thresholds_csv is not None and not request.mitigate:
        raise InputError("--thresholds-csv needs --mitigate demographic_parity or equalized_odds")
    say = (lambda text: typer.echo(f"  {text}", err=True)) if not as_json else (lambda _: None)
    store = open_store(db)
    audit = run(FileSource(file) if file is not None else StoreSource(store), request, progress=say)
    if file is None or (db is not None and store.exists()):  # a file's audit is recorded in a store named by --db
        record_once(store, audit, set())  # not on a lake or a read-only store
    if csv is not None:
        csv.write_text(audit.groups_csv(), encoding="utf-8")
        say(f"group table written to {csv}")
    if thresholds_csv is not None:
        thresholds_csv.write_text(audit.thresholds_csv(), encoding="utf-8")
        say(f"group thresholds written to {thresholds_csv}")
    emit(as_json, audit.to_json(), format_audit(audit))
    if exit_code and audit.verdict == "fail":
        raise typer.Exit(1)


def _pct(x: float | None, width: int = 6) -> str:
    return f"{'n/a':>{width}}" if x is None else f"{x:{width}.3f}"


TERMINAL_HEADERS = {"selection_rate": "selection", "accuracy": "accuracy", "tpr": "TPR", "fpr": "FPR", "fnr": "FNR",
                    "precision": "precision"}  # fmt: skip


def format_audit(audit: Any) -> str:
    """The audit for the terminal: verdict, group table (whole metric names as headers), disparities, flags."""
    from workbench.stats.fairness import HEADLINE_DISPARITIES

    widths = {m: max(len(h), 6) for m, h in TERMINAL_HEADERS.items()}
    width = max([len(g["group"]) for g in audit.groups] + [5])
    header = "  ".join(f"{h:>{widths[m]}}" for m, h in TERMINAL_HEADERS.items())
    lines = [audit.verdict_text, "", f"{'group':<{width}}  {'n':>9}  {header}  status"]
    for g in audit.groups:
        values = "  ".join(_pct(g[m], widths[m]) for m in TERMINAL_HEADERS)
        lines.append(f"{g['group']:<{width}}  {g['n']:>9,}  {values}  {g['status']}")
    lines.append("")
    for name in HEADLINE_DISPARITIES:
        low, high = (audit.disparity_intervals.get(name) or [None, None])[:2]
        ci = f"  [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
        lines.append(f"{name:<31} {_pct(audit.disparities.get(name))}{ci}")
    for title, section in (("Model versions", audit.comparison), ("Mitigation preview", audit.mitigation)):
        if section:
            lines += ["", f"{title}: {section['verdict_text']}"]
            lines += [f"  {rule['group']}: {rule['rule']}" for rule in section.get("thresholds", [])]
    if audit.mitigation:
        lines.append("  (a preview of a post-processing option, not a retrained model)")
    if audit.flags:
        lines.append("")
        lines += [f"- {f['message']}" for f in audit.flags[:20]]
        if len(audit.flags) > 20:
            lines.append(f"  … and {len(audit.flags) - 20} more flags (--json for all)")
    return "\n".join(lines)
