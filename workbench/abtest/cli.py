"""CLI for A/B significance analysis: `workbench abtest` (store, file or typed-in summaries) and `workbench power`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from workbench.abtest import formats
from workbench.core.command import DbOption, JsonOption, emit
from workbench.core.errors import InputError
from workbench.core.window import Window

if TYPE_CHECKING:
    from workbench.abtest.result import ABTestResult

commands = typer.Typer()  # mounted on `workbench` by workbench.cli


@commands.command()
def abtest(
    metric: Annotated[
        list[str] | None,
        typer.Option(
            help="Store: primary metric(s), repeatable or a,b (thumbs_up_rate, click_rate, correction_rate, "
            "mean_rating, dwell_time, clicks_per_session); default from settings."
        ),
    ] = None,
    guardrail: Annotated[
        list[str] | None, typer.Option(help="Store: guardrail metric(s) that must not get worse; 'none' for none.")
    ] = None,
    control: Annotated[
        str | None, typer.Option(help="Control arm (default: champion/control/v1…, else first).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="Store: predictions from (ISO date/time, UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="Store: predictions before (ISO date/time, UTC).")] = None,
    arm_source: Annotated[str, typer.Option(help="Store: arms from 'arm', 'model_version' or 'auto'.")] = "auto",
    cuped: Annotated[
        bool | None, typer.Option("--cuped/--no-cuped", help="Store: adjust by each unit's pre-period value (CUPED).")
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            help="Store or --file: break every metric down by this column (device, country, region …): Cochran's Q "
            "across its values, then per value the lift, adjusted p, chance to win and risk."
        ),
    ] = None,
    segment_min_n: Annotated[
        int | None,
        typer.Option(help="Store, with --by: observations per arm below which a value is too small to read."),
    ] = None,
    file: Annotated[Path | None, typer.Option(help="File with one row per unit (CSV, Parquet, JSON Lines).")] = None,
    arm_col: Annotated[str | None, typer.Option(help="File: the arm column.")] = None,
    metric_col: Annotated[str | None, typer.Option(help="File: the metric column.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="File: proportion, mean or ratio (inferred).")] = None,
    denominator_col: Annotated[str | None, typer.Option(help="File: denominator of a ratio metric.")] = None,
    pre_col: Annotated[str | None, typer.Option(help="File: pre-period covariate (CUPED).")] = None,
    lower_is_better: Annotated[bool, typer.Option(help="File/summary: a decrease is an improvement.")] = False,
    summary_file: Annotated[
        Path | None, typer.Option(help="Typed-in summaries: rows arm,n,successes or arm,n,mean,std [,metric].")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Planned split for SRM, e.g. champion=0.5,challenger=0.5.")] = None,
    alpha: Annotated[float | None, typer.Option(help="Significance level (default 0.05).")] = None,
    adjustment: Annotated[str | None, typer.Option(help="Multiple comparisons: holm, bh or none.")] = None,
    exit_code: Annotated[
        bool, typer.Option(help="Exit 1 on a sample ratio mismatch or a failed guardrail (for a scheduler).")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Is the variant better? SRM first, then per metric and variant the test, CIs, lift, Bayes and power.

    Proportions: pooled two-proportion z p-value, unpooled Wald CI; means: Welch t with capping and
    Mann–Whitney; ratios: delta method; Holm-adjusted p-values with consistent CIs; verdict in words.
    """
    # Lazy, as every command here: the analysis imports pandas, scipy and ibis; `workbench --help` stays fast.
    from workbench.abtest.request import ABTestRequest, parse_split
    from workbench.abtest.run import run
    from workbench.ingest.lake import open_store
    from workbench.sources.base import FileSource, StoreSource
    from workbench.sources.evidence import record_once

    if file is not None and summary_file is not None:
        raise InputError("give either --file or --summary-file, not both")
    mode = "file" if file is not None else "summary" if summary_file is not None else "store"
    request = ABTestRequest(
        mode=mode, metrics=tuple(metric or ()), guardrails=None if guardrail is None else tuple(guardrail),
        window=Window(_when(start, "--start"), _when(end, "--end")) if mode == "store" else None,
        arm_source=arm_source, cuped=cuped, arm_col=arm_col, metric_col=metric_col, kind=type_,
        denominator_col=denominator_col, pre_col=pre_col, control=control, planned_split=parse_split(split) or (),
        by=by, segment_min_n=segment_min_n, lower_is_better=lower_is_better, alpha=alpha, adjustment=adjustment,
    )  # fmt: skip
    store = open_store(db)
    source = StoreSource(store) if mode == "store" else FileSource(file or summary_file)  # type: ignore[arg-type]
    say = _progress(as_json)
    if file is not None:
        say(f"reading {file.name}")
    result = run(source, request, progress=say)
    if mode == "store" or (db is not None and store.exists()):
        record_once(store, result, set())
    emit(as_json, result.to_json(), format_result(result))
    if exit_code and result.verdict in ("srm_fail", "guardrail_fail"):
        raise typer.Exit(1)


@commands.command()
def power(
    baseline: Annotated[float, typer.Option(help="Control's rate (proportion) or mean (with --std).")],
    mde: Annotated[float, typer.Option(help="Minimum detectable effect: absolute, or relative with --relative.")],
    relative: Annotated[bool, typer.Option(help="--mde is relative to the baseline (0.05 = +5%).")] = False,
    alpha: Annotated[float, typer.Option(help="Two-sided significance level.")] = 0.05,
    power: Annotated[float, typer.Option("--power", help="Probability of detecting the MDE.")] = 0.8,
    arms: Annotated[int, typer.Option(help="Arms including control (α split over the k − 1 comparisons).")] = 2,
    std: Annotated[float | None, typer.Option(help="Standard deviation per unit: plan a mean metric.")] = None,
    daily_units: Annotated[
        float | None, typer.Option(help="Units per day entering the test (all arms): adds days needed.")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Units per arm to detect the MDE (statsmodels NormalIndPower with Cohen's h, or d = Δ/σ for means)."""
    from workbench.stats.power import plan_mean, plan_proportion

    if std is None:
        plan = plan_proportion(baseline, mde, relative, alpha, power, arms)
    else:
        plan = plan_mean(baseline, std, mde, relative, alpha, power, arms)
    document: dict[str, Any] = plan.to_dict()
    days = None
    if daily_units is not None:
        if not daily_units > 0:
            raise InputError(f"--daily-units must be positive, not {daily_units}")
        days = plan.total / daily_units
    document["days_needed"] = days
    rel = f" ({plan.mde_rel:+.1%})" if plan.mde_rel is not None else ""
    text = (
        f"{plan.n_per_arm:,} units per arm ({plan.total:,} in all, {arms} arms) to detect {plan.mde_abs:+.4g}{rel} "
        f"from {plan.baseline:.4g} with {plan.power:.0%} power at α={plan.alpha:g} two-sided"
        + (f" (α={plan.alpha_per_comparison:.3g} per comparison)" if arms > 2 else "")
        + (f"; about {days:.1f} days at {daily_units:,.0f} units/day" if days is not None else "")
        + (f"\n{plan.note}" if plan.note else "")
    )
    emit(as_json, document, text)


def format_result(result: ABTestResult) -> str:
    """Returns the plain-text A/B result: SRM, one line per comparison and guardrail, warnings, the verdict."""
    lines = []
    if not result.srm.ok:
        lines.append(f"!! SRM: {result.srm.message}{result.srm.reason_suffix} — results untrustworthy")
    else:
        lines.append(f"SRM ok: {result.srm.message}")
    for c in [*result.comparisons, *result.guardrails]:
        role = "guardrail " if c.role == "guardrail" else ""
        means = f"{formats.metric_value(c, c.control_mean)} → {formats.metric_value(c, c.variant_mean)}"
        bayes = f", P(beat control)={c.prob_beat_control:.1%}" if c.prob_beat_control is not None else ""
        bayes += f", risk {formats.risk(c, c.expected_loss)}" if c.expected_loss is not None else ""
        status = f", guardrail {c.guardrail['status']}" if c.guardrail else ""
        lines.append(
            f"{role}{c.label}: {c.variant} vs {c.control} {means}; {_effect(c)}, p {formats.p_value(c.p_value)}, "
            f"adjusted p {formats.p_value(c.p_adjusted)}{bayes}{status}"
        )
    lines += _segment_lines(result)
    lines += [f"warning: {w}" for w in result.warnings]
    lines.append(f"verdict: {result.verdict_text}")
    return "\n".join(lines)


def _segment_lines(result: ABTestResult) -> list[str]:
    """The breakdown in the text report: Cochran's Q per metric first, then one line per value, the adjustment."""
    breakdown = result.segments
    if breakdown is None:
        return []
    lines = [f"by {breakdown.by}: {h.text}" for h in breakdown.heterogeneity]
    for r in breakdown.rows:
        if r.verdict in ("too_small", "untestable"):
            lines.append(f"  {breakdown.by}={r.value} · {r.label} ({r.variant}): {r.message}")
            continue
        bayes = f", P(beat control)={formats.chance(r.prob_beat_control)}, risk {formats.risk(r, r.expected_loss)}"
        lines.append(f"  {breakdown.by}={r.value} · {r.label} ({r.variant}): {_effect(r)}, adjusted p "
                     f"{formats.p_value(r.p_adjusted)}{bayes if r.expected_loss is not None else ''}: "
                     f"{r.verdict.replace('_', ' ')}")  # fmt: skip
    lines.append(f"  {breakdown.adjustment_text}")
    return lines


def _effect(c: Any) -> str:
    """The difference with its interval (points or the metric's unit) and the relative lift, said as such."""
    low, high = c.diff_ci or (None, None)
    ci = f" [{formats.difference(c, low, False)}, {formats.difference(c, high, False)}]" if c.diff_ci else ""
    lift = f" ({formats.relative(c.rel_lift, word=True)})" if c.rel_lift is not None else ""
    return f"{formats.difference(c, c.diff)}{ci}{lift}"


def _when(text: str | None, option: str) -> datetime | None:
    if not text:
        return None
    import pandas as pd

    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise InputError(f"{option} '{text}' is not a date/time (use e.g. 2026-03-01 or 2026-03-01T12:00)") from None
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()


def _progress(as_json: bool) -> Any:
    """Progress lines on stderr (stdout stays one JSON document with --json)."""

    def say(step: str) -> None:
        typer.echo(f"  {step}…", err=True)

    return say


@commands.command()
def shadow(
    file: Annotated[Path, typer.Option(help="Scored pairs: one row per request with both models' predictions.")],
    champion_col: Annotated[str, typer.Option(help="The champion's prediction column.")],
    challenger_col: Annotated[str, typer.Option(help="The challenger's prediction column.")],
    label_col: Annotated[str | None, typer.Option(help="The true label, where known (McNemar's test).")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    as_json: JsonOption = False,
) -> None:
    """Shadow mode: agreement rate and McNemar's exact test on correctness, both models on the same traffic."""
    from workbench.abtest.shadow import analyse_shadow_file, shadow_document

    if not 0 < alpha < 1:
        raise InputError(f"--alpha must be between 0 and 1, not {alpha}")
    result = analyse_shadow_file(file, champion_col, challenger_col, label_col, alpha)
    emit(as_json, shadow_document(result), result.verdict_text)
