"""CLI for the fairness audit: `workbench fairness` on the store or on a file (DESIGN.md's contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.core.command import DbOption, JsonOption, emit
from workbench.core.errors import InputError
from workbench.sources.store import Store

commands = typer.Typer()  # mounted on `workbench` by workbench.cli


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


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
    csv: Annotated[Path | None, typer.Option(help="Also write the group table as CSV here.")] = None,
    exit_code: Annotated[bool, typer.Option(help="Exit 1 when the verdict is fail (for a scheduler).")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Audit group fairness: rates with CIs per group, fairlearn's disparities, each group vs the reference
    (z-test, Holm), representation of the labelled feedback, disparity over time, champion vs challenger.
    """
    from workbench.fairness.audit import audit_file, audit_store, load_settings, read_population, with_overrides

    attributes = _names(sensitive)
    if not attributes:
        raise InputError("--sensitive needs at least one column name")
    settings = with_overrides(
        load_settings(),
        verdict_metrics=tuple(_names(metrics)) if metrics else None,
        bootstrap_resamples=resamples,
        time_chunk=chunk,
    )
    if settings.time_chunk not in ("day", "week"):
        raise InputError(f"--chunk must be day or week, not '{settings.time_chunk}'")
    if settings.bootstrap_resamples < 0:
        raise InputError("--resamples must be 0 or more")
    shares = read_population(population) if population else None
    say = (lambda text: typer.echo(f"  {text}", err=True)) if not as_json else (lambda _: None)
    if file is not None:
        if not (label and prediction):
            raise InputError("file mode needs --label and --prediction (and optionally --score)")
        if window or model_version:
            raise InputError("--window and --model-version apply to the store; filter the file before auditing it")
        audit = audit_file(file, label, prediction, attributes, score, ts, version_col, settings, reference_group,
                           shares, progress=say)  # fmt: skip
        store = Store(db)
        record = db is not None and store.exists()
    else:
        if label or prediction or score or ts or version_col:
            raise InputError("--label/--prediction/--score/--ts/--version-col need --file (the store has its roles)")
        from workbench.core.window import parse_window
        from workbench.sources.store_queries import store_bounds

        store = Store(db)
        if not store.exists():
            raise InputError(f"{store.path}: no store here (run `workbench demo` or `workbench ingest` first)")
        scope = parse_window(window, model_version, store_bounds(store))
        audit = audit_store(store, attributes, scope, settings, reference_group, shares, champion, challenger, say)
        record = True
    if record:
        from workbench.sources.evidence import record_run

        record_run(store, "fairness", audit.verdict, audit.run_summary())
    if csv is not None:
        csv.write_text(audit.groups_csv(), encoding="utf-8")
        say(f"group table written to {csv}")
    emit(as_json, audit.to_dict(), format_audit(audit))
    if exit_code and audit.verdict == "fail":
        raise typer.Exit(1)


def _pct(x: float | None, width: int = 6) -> str:
    return f"{'n/a':>{width}}" if x is None else f"{x:{width}.3f}"


TERMINAL_HEADERS = {"selection_rate": "selection", "accuracy": "accuracy", "tpr": "TPR", "fpr": "FPR", "fnr": "FNR",
                    "precision": "precision"}  # fmt: skip


def format_audit(audit: Any) -> str:
    """The audit for the terminal: verdict, group table (whole metric names as headers), disparities, flags."""
    widths = {m: max(len(h), 6) for m, h in TERMINAL_HEADERS.items()}
    width = max([len(g["group"]) for g in audit.groups] + [5])
    header = "  ".join(f"{h:>{widths[m]}}" for m, h in TERMINAL_HEADERS.items())
    lines = [audit.verdict_text, "", f"{'group':<{width}}  {'n':>9}  {header}  status"]
    for g in audit.groups:
        values = "  ".join(_pct(g[m], widths[m]) for m in TERMINAL_HEADERS)
        lines.append(f"{g['group']:<{width}}  {g['n']:>9,}  {values}  {g['status']}")
    lines.append("")
    for name in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                 "equalized_odds_ratio"):  # fmt: skip
        low, high = (audit.disparity_intervals.get(name) or [None, None])[:2]
        ci = f"  [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
        lines.append(f"{name:<31} {_pct(audit.disparities.get(name))}{ci}")
    if audit.flags:
        lines.append("")
        lines += [f"- {f['message']}" for f in audit.flags[:20]]
        if len(audit.flags) > 20:
            lines.append(f"  … and {len(audit.flags) - 20} more flags (--json for all)")
    return "\n".join(lines)
