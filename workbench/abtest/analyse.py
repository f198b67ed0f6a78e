"""A/B significance analysis end to end: from the store, a file or typed-in summaries to an :class:`ABTestResult`.

The page, the CLI (`workbench abtest`) and the notebook reach these three functions through
:func:`workbench.abtest.run.run`, each with an :class:`~workbench.abtest.request.ABTestRequest`. The engine aggregates
(:mod:`workbench.abtest.queries`), the statistics are pure (:mod:`workbench.stats`), and every mode ends in
:func:`workbench.abtest.result.finish`: comparisons, timeline, power status and the verdict in words.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.abtest.compare import MetricData
from workbench.abtest.kept import KeptSummary, kept_summary, kept_units, read_kept_summary
from workbench.abtest.queries import (
    cap_value,
    capped_stats,
    daily_event_stats,
    event_observations,
    file_observations,
    moments_by,
    observations,
    pre_period_observations,
    pre_period_predictions,
    rank_sums,
    unit_stats,
)
from workbench.abtest.request import ABTestRequest
from workbench.abtest.result import (
    ABTestResult,
    ABTestSettings,
    choose_control,
    export,
    finish,
    load_settings,
    srm_summary,
)
from workbench.abtest.segments import breakdown, check_column, file_segments, store_columns, store_segments
from workbench.abtest.summary_queries import (
    EventAggregates,
    event_summary,
    rank_sums_from_counts,
    read_event_summary,
    read_unit_summary,
    unit_summary,
)
from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.sources import unit_sums
from workbench.sources.experiment import HIDDEN_PREFIX, Metric, experiment_predictions, kept_columns, metric
from workbench.sources.files import file_table
from workbench.sources.store import Store, table_columns
from workbench.sources.store_queries import filtered_predictions
from workbench.sources.trace_feedback import kept_sums
from workbench.stats.abtest import Moments, ProportionStats

__all__ = ["ABTestRequest", "ABTestResult", "ABTestSettings", "analyse_file", "analyse_store", "analyse_summary",
           "export", "load_settings", "parse_summary_file"]  # fmt: skip

Progress = Callable[[str], None]


def analyse_store(store: Store, request: ABTestRequest | None = None, progress: Progress | None = None) -> ABTestResult:
    """Returns the analysis of the experiment in the store (``request`` in store mode; None: the settings' defaults).

    Arms from the ``arm`` role (or model versions), metrics from feedback. Units are ``unit_id`` when set (else
    each prediction). SRM on distinct units per arm and per segment (the sensitive and categorical columns);
    each metric aggregated per arm, day and unit in the engine.
    """
    request = request or ABTestRequest()
    settings = request.resolved_settings()
    window, control, arm_source = request.window, request.control, request.arm_source
    say = progress or (lambda _step: None)
    primary = [metric(m) for m in (request.metrics or settings.metrics)]
    guardrails = settings.guardrails if request.guardrails is None else request.guardrails
    guards = [g for g in (metric(x) for x in guardrails) if g not in primary]
    cuped = settings.cuped if request.cuped is None else request.cuped
    warnings: list[str] = []
    chosen = [*(("primary", m) for m in primary), *(("guardrail", m) for m in guards)]
    with store.ibis() as con:
        segment_columns = _segment_columns(con, settings)
        has_units = _has_unit_ids(con, window)
        if cuped and not has_units:
            warnings.append("CUPED needs a unit_id to find each unit's pre-period: it was not applied.")
            cuped = False
        kept, stored = kept_sums(con)  # per-trace sums current; the per-unit sums' segment columns (or None)
        keep = kept_columns([m for _role, m in chosen]) if kept else ()
        exp, source = experiment_predictions(con, window, arm_source, tuple(segment_columns), keep)
        say("counting units per arm and segment")
        n_segments = len(segment_columns)
        units = _kept_units(stored, window, source, segment_columns)
        if kept:
            say(f"aggregating {', '.join(m.label for _role, m in chosen)} from the kept sums")
            read = _kept_aggregates(con, exp, n_segments, chosen, settings, cuped, keep, units)
            summary = read.units
        else:
            summary = read_unit_summary(unit_summary(exp, n_segments).execute(), n_segments,
                                        settings.max_segment_values)  # fmt: skip
        if not summary.counts:
            raise InputError("no predictions with an arm in this window: set the `arm` role, or use model versions")
        control = choose_control(list(summary.counts), control or settings.control or None)
        counts = {control: summary.counts[control], **{a: n for a, n in summary.counts.items() if a != control}}
        variants = [a for a in counts if a != control]
        first, last, crossover = summary.first, summary.last, summary.crossover
        segments = dict(zip(segment_columns, summary.segments, strict=True))
        if kept:
            datas = [_event_metric(read.metrics[m.name], m, role, control, variants) for role, m in chosen]
        else:
            say("joining feedback to the arms")
            datas = _store_metrics(con, exp, chosen, control, variants, settings, cuped, first, say)
        by_value = None
        if request.by:
            say(f"aggregating every metric per {request.by}")
            check_column(store_columns(con), request.by, segment_columns)
            by_value = store_segments(con, request.by, window, source, chosen, settings.max_segment_values)
    srm = srm_summary(counts, request.split or settings.planned_split or None, settings.srm_p_threshold,
                      {k: v for k, v in segments.items() if v}, crossover)  # fmt: skip
    days = (last - first).total_seconds() / 86400 if first and last else None
    path = "unit sums" if units is not None else "trace sums" if kept else "feedback join"  # what it read
    info = {"first": first.isoformat() if first else None, "last": last.isoformat() if last else None,
            "days": days, "arm_source": source, "cuped": cuped, "aggregated_from": path}  # fmt: skip
    split = breakdown(request.by, by_value, control, variants, settings) if request.by and by_value else None
    unit = "unit_id" if has_units else "prediction"
    return finish(datas, srm, control, settings, "store", unit, info, warnings, split)


def _kept_aggregates(
    con: Any,
    exp: Any,
    n_segments: int,
    chosen: list[tuple[str, Metric]],
    settings: ABTestSettings,
    cuped: bool,
    keep: tuple[str, ...],
    units: list[str] | None = None,
) -> KeptSummary:
    """The SRM inputs and every metric's aggregates from the predictions' kept per-trace sums
    (:mod:`workbench.abtest.kept`), with ``units`` (segment columns) from the kept per-unit sums; with
    CUPED, the pre-period is the days before the first exposure."""
    import pandas as pd

    metrics = [m for _role, m in chosen]
    pre = None
    if cuped:
        start = exp.ts.min().execute()
        if start is not None and start == start:
            start = start.to_pydatetime() if hasattr(start, "to_pydatetime") else start
            pre = pre_period_predictions(con, start, settings.cuped_lookback_days, keep)
    table = kept_units(con, units, metrics) if units is not None else None
    queries = kept_summary(exp, n_segments, metrics, settings.capping_percentile,
                           settings.capping_nonzero_only, pre, table)  # fmt: skip
    frame = pd.concat([q.execute() for q in queries], ignore_index=True)
    return read_kept_summary(frame, metrics, n_segments, settings.max_segment_values, pre is not None)


def _kept_units(stored: list[str] | None, window: Window | None, source: str, segments: list[str]) -> list[str] | None:
    """``segments`` when the ingest's per-unit sums (``stored``: their segment columns, None when not current)
    serve this analysis: the whole experiment, arms from the ``arm`` role, these segments kept; else None."""
    serves = stored is not None and window is None and source == "arm" and set(segments) <= set(stored)
    return segments if serves else None


def _has_unit_ids(con: Any, window: Window | None) -> bool:
    p = filtered_predictions(con, window)
    return int(p.unit_id.count().execute()) > 0


def _segment_columns(con: Any, settings: ABTestSettings) -> list[str]:
    """The columns to check SRM in: settings.segments, else the sensitive and categorical roles."""
    columns = [c for c in table_columns(con.con, "predictions") if not c.startswith(HIDDEN_PREFIX)]
    if settings.segments:
        return [c for c in settings.segments if c in columns]
    return unit_sums.segment_columns(con.con, columns)


def _store_metrics(
    con: Any,
    exp: Any,
    chosen: list[tuple[str, Metric]],
    control: str,
    variants: list[str],
    settings: ABTestSettings,
    cuped: bool,
    start: Any,
    say: Progress,
) -> list[MetricData]:
    """Every metric's MetricData, in ``chosen`` order (role, metric).

    The event metrics come from one query (:func:`event_summary`: one join of feedback to the arms, and with
    CUPED one of feedback to the pre-period's predictions); per-prediction metrics use one query per aggregate.
    """
    event_metrics = [m for _role, m in chosen if not m.per_prediction]
    fast = {}
    if event_metrics:
        say(f"aggregating {', '.join(m.label for m in event_metrics)}")
        pre = None
        if cuped and start:
            pre = event_observations(con, pre_period_predictions(con, start, settings.cuped_lookback_days),
                                     event_metrics)  # fmt: skip
        query = event_summary(event_observations(con, exp, event_metrics), event_metrics,
                              settings.capping_percentile, settings.capping_nonzero_only, pre)  # fmt: skip
        fast = read_event_summary(query.execute(), event_metrics, cuped=pre is not None)
    out = []
    for role, m in chosen:
        if m.name in fast:
            out.append(_event_metric(fast[m.name], m, role, control, variants))
            continue
        say(f"aggregating {m.label}")
        obs = observations(con, exp, m)
        out.append(_store_metric(con, obs, m, role, control, variants, settings, cuped, start))
    return out


def _event_metric(agg: EventAggregates, m: Metric, role: str, control: str, variants: list[str]) -> MetricData:
    """MetricData of an event metric from its one-query aggregates (as :func:`_store_metric` builds it)."""
    empty: Any = ProportionStats(0, 0) if m.kind == "proportion" else Moments.empty()
    events = None if m.kind == "ratio" else {arm: sum(per_day.values(), empty) for arm, per_day in agg.daily.items()}
    ranks = {v: rank_sums_from_counts(agg.values, control, v) for v in variants} if m.kind == "mean" else {}
    cuped = agg.units if agg.cuped else None
    return MetricData(m, role, events, agg.units, agg.daily, cuped, "ratio" if agg.cuped else None, agg.capped,
                      agg.cap, ranks, clustered=True)  # fmt: skip


def _store_metric(
    con: Any,
    obs: Any,
    m: Metric,
    role: str,
    control: str,
    variants: list[str],
    settings: ABTestSettings,
    cuped: bool,
    start: Any,
) -> MetricData:
    """Aggregate one metric: daily event stats, per-unit moments (with the pre-period covariate), capping, ranks."""
    pre = pre_period_observations(con, m, start, settings.cuped_lookback_days) if cuped and start else None
    units = unit_stats(obs, pre)
    if m.kind == "ratio":
        daily = unit_stats(obs, by_day=True)
        events = None
    else:
        daily = daily_event_stats(obs, m.kind)
        empty: Any = ProportionStats(0, 0) if m.kind == "proportion" else Moments.empty()
        events = {arm: sum(per_day.values(), empty) for arm, per_day in daily.items()}
    capped = cap = None
    ranks = {}
    if m.kind == "mean":
        cap = cap_value(obs, settings.capping_percentile, settings.capping_nonzero_only)
        capped = capped_stats(obs, cap) if cap is not None else None
        ranks = {v: rank_sums(obs, control, v) for v in variants}
    return MetricData(m, role, events, units, daily, units if pre is not None else None, "ratio" if pre is not None
                      else None, capped, cap, ranks, clustered=True)  # fmt: skip


def analyse_file(path: str | Path, request: ABTestRequest) -> ABTestResult:
    """Returns the analysis of a file with one row per unit (``request`` in file mode: its arm and metric columns,
    a denominator, a pre-period value).

    ``kind``: proportion (0/1 values), mean, or ratio (Σ metric / Σ denominator, delta method); inferred
    when omitted. ``pre_col`` switches on CUPED; means also get capped results and Mann–Whitney.
    """
    if request.mode != "file":
        raise InputError(f"a units file needs a request in file mode, not '{request.mode}'")
    settings = request.resolved_settings()
    arm_col, metric_col, kind = str(request.arm_col), str(request.metric_col), request.kind
    denominator_col, pre_col, control = request.denominator_col, request.pre_col, request.control
    with file_table(path, materialize=True) as table:
        obs = file_observations(table, arm_col, {"value": metric_col, "den": denominator_col, "pre": pre_col},
                                request.by)  # fmt: skip
        stats = obs.aggregate(rows=obs.count(), binary=obs.count(where=obs.value.isin([0.0, 1.0]))).execute().iloc[0]
        if int(stats["rows"]) == 0:
            raise InputError(f"{Path(path).name}: no row has both '{arm_col}' and '{metric_col}'")
        kind = kind or ("ratio" if denominator_col else "proportion" if stats["binary"] == stats["rows"] else "mean")
        if kind == "proportion" and stats["binary"] != stats["rows"]:
            raise InputError(f"column '{metric_col}' has values other than 0 and 1: use --type mean (or ratio)")
        m = Metric(metric_col, metric_col.replace("_", " "), kind, "", not request.lower_is_better)
        frame = obs.group_by("arm").aggregate(n=obs.count(), total=obs.value.sum()).order_by("arm").execute()
        counts = {str(r.arm): int(r.n) for r in frame.itertuples()}
        control = choose_control(list(counts), control or settings.control or None)
        variants = [a for a in counts if a != control]
        events = units = cuped = capped = cap = None
        ranks: dict[str, Any] = {}
        if kind == "proportion":
            events = {str(r.arm): ProportionStats(int(r.n), round(float(r.total))) for r in frame.itertuples()}
        elif kind == "mean":
            events = moments_by(obs, ["arm"], ["value"])
            cap = cap_value(obs, settings.capping_percentile, settings.capping_nonzero_only)
            capped = capped_stats(obs, cap) if cap is not None else None
            ranks = {v: rank_sums(obs, control, v) for v in variants}
        else:
            units = moments_by(obs, ["arm"], ["value", "den"])
        if pre_col:
            cuped = moments_by(obs, ["arm"], ["value", "den", "pre"] if kind == "ratio" else ["value", "pre"])
        data = MetricData(m, "primary", events, units, None, cuped, ("ratio" if kind == "ratio" else "mean") if cuped
                          else None, capped, cap, ranks)  # fmt: skip
        by_value = file_segments(obs, m, request.by, settings.max_segment_values) if request.by else None
    srm = srm_summary(counts, request.split or settings.planned_split or None, settings.srm_p_threshold)
    split = breakdown(request.by, by_value, control, variants, settings) if request.by and by_value else None
    return finish([data], srm, control, settings, "file", "row", segments=split)


SUMMARY_HELP = "rows 'arm,n,successes' (proportions) or 'arm,n,mean,std' (means), optionally with a 'metric' column"


def parse_summary_file(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a typed-in summary CSV (header required): arm,n,successes or arm,n,mean,std [,metric]."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    dialect = "excel-tab" if "\t" in text.splitlines()[0] else "excel"
    rows = list(csv.DictReader(text.splitlines(), dialect=dialect)) if text.strip() else []
    if not rows:
        raise InputError(f"{path.name}: no rows; expected {SUMMARY_HELP}")
    return [{k.strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in r.items() if k} for r in rows]


def analyse_summary(rows: list[dict[str, Any]], request: ABTestRequest | None = None) -> ABTestResult:
    """Returns the analysis of typed-in summaries (results from elsewhere): per arm n and successes, or n, mean
    and std (``request``: control, split, settings; None: the defaults)."""
    request = request or ABTestRequest(mode="summary")
    settings = request.resolved_settings()
    metric_name, lower_is_better, control = request.metric_name, request.lower_is_better, request.control
    by_metric: dict[str, dict[str, Any]] = {}
    kinds: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        name = str(row.get("metric") or metric_name)
        arm = str(row.get("arm") or "").strip()
        if not arm:
            raise InputError(f"row {number}: no arm name; expected {SUMMARY_HELP}")
        n = _count(row, "n", number)
        if _present(row.get("successes")):
            stats: Any = ProportionStats(n, _count(row, "successes", number))
            if stats.successes > n:
                raise InputError(f"row {number}: successes ({stats.successes}) exceed n ({n}) for arm '{arm}'")
            kind = "proportion"
        elif _present(row.get("mean")) and _present(row.get("std")):
            mean, std = _number(row, "mean", number), _number(row, "std", number)
            if std < 0:
                raise InputError(f"row {number}: std must be ≥ 0, not {std}")
            stats, kind = (Moments.from_summary(n, mean, std) if n else Moments.empty()), "mean"
        else:
            raise InputError(f"row {number}: need successes, or mean and std; expected {SUMMARY_HELP}")
        if kinds.setdefault(name, kind) != kind:
            raise InputError(f"metric '{name}' mixes proportion and mean rows")
        if arm in by_metric.setdefault(name, {}):
            raise InputError(f"row {number}: arm '{arm}' appears twice for metric '{name}'")
        by_metric[name][arm] = stats
    arms = list(next(iter(by_metric.values())))
    for name, per_arm in by_metric.items():
        if set(per_arm) != set(arms):
            raise InputError(f"metric '{name}' has arms {sorted(per_arm)}, the first metric {sorted(arms)}")
    counts = {arm: by_metric[next(iter(by_metric))][arm].n for arm in arms}
    control = choose_control(arms, control or settings.control or None)
    datas = [MetricData(Metric(name, name.replace("_", " "), kinds[name], "", not lower_is_better), "primary", per_arm)
             for name, per_arm in by_metric.items()]  # fmt: skip
    srm = srm_summary(counts, request.split or settings.planned_split or None, settings.srm_p_threshold)
    return finish(datas, srm, control, settings, "summary", "row")


def _present(value: Any) -> bool:
    return value is not None and str(value).strip() != "" and not (isinstance(value, float) and math.isnan(value))


def _number(row: dict[str, Any], key: str, number: int) -> float:
    try:
        value = float(row[key])
    except (TypeError, ValueError, KeyError):
        raise InputError(f"row {number}: {key} must be a number, not {row.get(key)!r}") from None
    if not math.isfinite(value):
        raise InputError(f"row {number}: {key} must be a finite number")
    return value


def _count(row: dict[str, Any], key: str, number: int) -> int:
    value = _number(row, key, number)
    if value < 0 or value != int(value):
        raise InputError(f"row {number}: {key} must be a whole number ≥ 0, not {row.get(key)!r}")
    return int(value)
