"""Ibis aggregates of an A/B test: per arm (and day, unit, segment) the sufficient statistics of each metric.

Observations are one row per metric event (or per prediction) with ``arm, unit, day, value``; everything
below groups them in the engine and returns small frozen dataclasses from :mod:`workbench.stats.abtest`,
so 100M events cost a few GROUP BYs and the statistics never see a row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from workbench.core.errors import InputError
from workbench.sources.experiment import Metric
from workbench.stats.abtest import Moments, ProportionStats


@contextmanager
def temp_table(con: Any, expr: Any, name: str) -> Iterator[Any]:
    """Materialise ``expr`` once as a TEMP table (read-only connections allow them) and drop it afterwards."""
    table = con.create_table(name, obj=expr, temp=True, overwrite=True)
    try:
        yield table
    finally:
        con.drop_table(name, force=True)


def event_observations(con: Any, exp: Any, metrics: list[Metric], carry: tuple[str, ...] = ()) -> Any:
    """Every event metric's observations in one join: ``metric, arm, unit, day, value`` (proportions 0/1), with
    ``exp``'s columns named in ``carry`` (a segment) as they are on the prediction the event is about."""
    kinds = {m.feedback_type: m for m in metrics if not m.per_prediction}
    f = con.table("feedback")
    f = f.filter(f.type.isin(list(kinds)) & f.value.notnull()).select("trace_id", "type", "value")
    j = f.inner_join(exp.select("trace_id", "arm", "unit", "day", *carry), "trace_id")
    names = ibis_cases(j.type, {t: m.name for t, m in kinds.items()})
    binary = j.type.isin([t for t, m in kinds.items() if m.kind == "proportion"])
    value = binary.ifelse((j.value > 0).ifelse(1.0, 0.0), j.value.cast("float64"))
    return j.select(*carry, metric=names, arm=j.arm, unit=j.unit, day=j.day, value=value)


def ibis_cases(column: Any, mapping: dict[str, str]) -> Any:
    """CASE column WHEN key THEN value … END as an Ibis expression."""
    import ibis

    return ibis.cases(*((column == key, value) for key, value in mapping.items()), else_=None)


def observations(con: Any, exp: Any, m: Metric, events: Any | None = None, carry: tuple[str, ...] = ()) -> Any:
    """One row per observation of ``m``: ``arm, unit, day, value`` (proportions: value 0/1), and the ``carry``
    columns of ``exp`` (a segment).

    Event metrics read ``events`` (the materialised :func:`event_observations`) when given; metrics
    observed on every prediction (0 when it got no such feedback) are built from the predictions.
    """
    if not m.per_prediction:
        source = events if events is not None else event_observations(con, exp, [m], carry)
        return source.filter(source.metric == m.name).select("arm", "unit", "day", "value", *carry)
    f = con.table("feedback")
    f = f.filter(f.type == m.feedback_type)
    if m.kind == "proportion":  # did the prediction get this feedback at all (a correction)?
        value = exp.trace_id.isin(f.trace_id).ifelse(1, 0)
        return exp.select("arm", "unit", "day", *carry, value=value.cast("float64"))
    per_trace = f.group_by("trace_id").aggregate(total=f.value.sum())
    j = exp.left_join(per_trace, "trace_id")
    return j.select("arm", "unit", "day", *carry, value=j.total.fill_null(0.0).cast("float64"))


def daily_event_stats(obs: Any, kind: str) -> dict[str, dict[dt.date, Any]]:
    """Per arm and day: ProportionStats (proportions) or Moments of the value (event level)."""
    frame = (
        obs.group_by(["arm", "day"])
        .aggregate(n=obs.count(), total=obs.value.sum(), mean=obs.value.mean(), var=obs.value.var())
        .execute()
    )
    out: dict[str, dict[dt.date, Any]] = {}
    for r in frame.itertuples():
        day = as_date(r.day)
        if kind == "proportion":
            stats = ProportionStats(int(r.n), round(float(r.total)))
        else:
            stats = Moments.from_moments(int(r.n), [r.mean], [[as_float(r.var)]])
        out.setdefault(str(r.arm), {})[day] = stats
    return out


def unit_stats(obs: Any, pre: Any | None = None, by_day: bool = False) -> dict[str, Any]:
    """Per arm (or arm and day) Moments over units of (Σ value, observations[, pre-period covariate]).

    The covariate is the unit's Σ value of the same metric in the pre-period (0 when it had none).
    """
    keys = ["arm", "day", "unit"] if by_day else ["arm", "unit"]
    per_unit = obs.group_by(keys).aggregate(y=obs.value.sum(), m=obs.count().cast("float64"))
    columns = ["y", "m"]
    if pre is not None:
        pre_unit = pre.group_by("unit").aggregate(z=pre.value.sum())
        joined = per_unit.left_join(pre_unit, "unit")
        per_unit = joined.select(*keys, "y", "m", z=joined.z.fill_null(0.0))
        columns.append("z")
    return moments_by(per_unit, keys[:-1], columns)


def moments_by(table: Any, group: list[str], columns: list[str], key: Callable[[Any], Any] | None = None) -> dict:
    """Moments of ``columns`` per ``group`` (arm, or arm and day): n, means, var_samp/covar_samp in the engine.

    With two group columns the result is nested, ``{first: {key(second): Moments}}``; ``key`` turns the second
    column's value into the inner key (default: a day, :func:`as_date`).

    The engine's var_samp and covar_samp are one-pass updates of centred sums (Welford), so precision
    holds at 10^8 rows; merging groups later uses :meth:`Moments.__add__`.
    """
    aggregates: dict[str, Any] = {"rows": table.count()}
    for c in columns:
        aggregates[f"mean_{c}"] = table[c].mean()
    for i, a in enumerate(columns):
        for b in columns[i:]:
            aggregates[f"cov_{a}_{b}"] = table[a].var() if a == b else table[a].cov(table[b])
    frame = table.group_by(group).aggregate(**aggregates).execute()
    out: dict[str, Any] = {}
    for r in frame.to_dict("records"):
        cov = [[as_float(r[f"cov_{_pair(a, b, columns)}"]) for b in columns] for a in columns]
        moments = Moments.from_moments(int(r["rows"]), [as_float(r[f"mean_{c}"]) for c in columns], cov)
        if len(group) == 2:
            out.setdefault(str(r[group[0]]), {})[(key or as_date)(r[group[1]])] = moments
        else:
            out[str(r[group[0]])] = moments
    return out


def _pair(a: str, b: str, columns: list[str]) -> str:
    first, second = sorted((a, b), key=columns.index)
    return f"{first}_{second}"


def rank_sums(obs: Any, control: str, variant: str) -> tuple[int, int, float, float]:
    """(n_control, n_variant, the variant's rank sum in the pooled sample, Σ(t³ − t) over ties), in the engine.

    Values are grouped (a tie group is one distinct value); the mid-rank of a group is its cumulative
    count − (t − 1)/2, so the Mann–Whitney inputs come from one GROUP BY and one window over distinct values.
    """
    import ibis

    pair = obs.filter(obs.arm.isin([control, variant]))
    groups = pair.group_by("value").aggregate(
        t=pair.count().cast("float64"), nv=pair.count(where=pair.arm == variant).cast("float64")
    )
    cumulative = groups.t.sum().over(ibis.cumulative_window(order_by=groups.value))
    ranked = groups.mutate(mid=cumulative - (groups.t - 1) / 2)
    row = ranked.aggregate(
        n=ranked.t.sum(), nv=ranked.nv.sum(), rank_sum=(ranked.nv * ranked.mid).sum(),
        ties=(ranked.t * ranked.t * ranked.t - ranked.t).sum(),
    ).execute().iloc[0]  # fmt: skip
    n, nv = as_float(row["n"]), as_float(row["nv"])
    return int(n - nv), int(nv), as_float(row["rank_sum"]), as_float(row["ties"])


def cap_value(obs: Any, percentile: float, nonzero_only: bool) -> float | None:
    """The capping threshold: the percentile of all values (or of the non-zero ones), across arms."""
    where = obs.value != 0 if nonzero_only else None
    value = obs.value.quantile(percentile, where=where).execute()
    return None if value is None or value != value else float(value)


def capped_stats(obs: Any, cap: float) -> dict[str, Moments]:
    """Per arm Moments of min(value, cap) (winsorised at the top)."""
    capped = obs.mutate(value=obs.value.clip(upper=cap))
    frame = capped.group_by("arm").aggregate(n=capped.count(), mean=capped.value.mean(), var=capped.value.var())
    return {
        str(r.arm): Moments.from_moments(int(r.n), [r.mean], [[as_float(r.var)]]) for r in frame.execute().itertuples()
    }


def arm_units(units: Any) -> dict[str, int]:
    """Distinct units per arm (the SRM counts), from :func:`units_by_arm`."""
    frame = units.group_by("arm").aggregate(units=units.count()).order_by("arm").execute()
    return {str(r.arm): int(r.units) for r in frame.itertuples()}


def crossover_units(units: Any) -> int:
    """Units seen in more than one arm (broken assignment, or a unit id shared by several users)."""
    per_unit = units.group_by("unit").aggregate(k=units.count())
    return int(per_unit.filter(per_unit.k > 1).count().execute())


def segment_units(units: Any, index: int, max_values: int) -> dict[str, dict[str, int]]:
    """Units per segment value (at first exposure) and arm: {value: {arm: units}}; {} above ``max_values`` values.

    Counting each unit once, in the segment it first appeared in (GrowthBook's dimension convention),
    keeps the counts a partition of the units, which the chi-square test needs.
    """
    column = units[f"seg_{index}"]
    frame = units.group_by([column.name("seg"), "arm"]).aggregate(units=units.count()).execute()
    if frame["seg"].nunique() > max_values:
        return {}
    out: dict[str, dict[str, int]] = {}
    for r in frame.sort_values(["seg", "arm"]).itertuples():
        out.setdefault(str(r.seg), {})[str(r.arm)] = int(r.units)
    return out


def period(units: Any) -> tuple[dt.datetime | None, dt.datetime | None]:
    """First and last prediction ts of the experiment."""
    row = units.aggregate(first=units.first.min(), last=units.last.max()).execute().iloc[0]
    first, last = row["first"], row["last"]
    return (None, None) if first is None or first != first else (first.to_pydatetime(), last.to_pydatetime())


def pre_period_observations(con: Any, m: Metric, start: dt.datetime, days: int) -> Any:
    """Observations of ``m`` on every prediction of the ``days`` before ``start`` (any arm): the CUPED covariate."""
    return observations(con, pre_period_predictions(con, start, days), m)


def pre_period_predictions(con: Any, start: dt.datetime, days: int, keep: tuple[str, ...] = ()) -> Any:
    """Every prediction of the ``days`` before ``start`` (any arm, arm ''), shaped as :func:`experiment_predictions`
    (with the columns named in ``keep``)."""
    p = con.table("predictions")
    p = p.filter((p.ts >= start - dt.timedelta(days=days)) & (p.ts < start))
    return p.select("trace_id", *keep, arm=ibis_literal_string(""), unit=p.unit_id.fill_null(p.trace_id), ts=p.ts,
                    day=p.ts.truncate("D"))  # fmt: skip


def ibis_literal_string(value: str) -> Any:
    """An Ibis string literal (a column of one value)."""
    import ibis

    return ibis.literal(value, type="string")


def file_observations(table: Any, arm_col: str, columns: dict[str, str | None], segment: str | None = None) -> Any:
    """``arm`` and the numeric columns named in ``columns`` ({value: M, den: D, pre: P}), rows with all present;
    with ``segment``, that column too as text (``seg_0``; a missing value is the value "(missing)").

    A NaN is missing (pandas writes missing floats as NaN), so its row is left out like a null's. An infinite
    value is bad input: it would make its arm's mean infinite and the verdict meaningless, so it is refused
    with the column and the count, rather than dropped in silence.
    """
    wanted = {"arm": arm_col, **{k: v for k, v in columns.items() if v}}
    missing = [c for c in [*wanted.values(), *([segment] if segment else [])] if c not in table.columns]
    if missing:
        raise InputError(
            f"no column {', '.join(repr(c) for c in missing)} in the file (it has {', '.join(table.columns)})"
        )
    selected = {"arm": table[arm_col].cast("string")}
    for key, col in wanted.items():
        if key == "arm":
            continue
        if not table[col].type().is_numeric() and not table[col].type().is_boolean():
            raise InputError(f"column '{col}' is not numeric (type {table[col].type()})")
        selected[key] = table[col].cast("float64")
    if segment:
        selected[SEGMENT] = table[segment].cast("string").fill_null("(missing)")
    obs = table.select(**selected)
    condition = obs.arm.notnull()
    numeric = [key for key in selected if key not in ("arm", SEGMENT)]
    for key in ["arm", *numeric]:
        condition &= obs[key].notnull()
    for key in numeric:
        condition &= ~obs[key].isnan()
    obs = obs.filter(condition)
    if numeric:
        infinite = obs.aggregate(**{key: obs[key].isinf().sum() for key in numeric}).execute().iloc[0]
        for key in numeric:
            if int(infinite[key] or 0):
                raise InputError(f"column '{wanted[key]}' has {int(infinite[key]):,} infinite value(s): "
                                 "fix or drop those rows (an arm's mean would be infinite)")  # fmt: skip
    return obs


def as_date(value: Any) -> dt.date:
    return value.date() if hasattr(value, "date") else dt.date.fromisoformat(str(value)[:10])


def as_float(value: Any) -> float:
    """A float from an engine value; NULL (a variance of one row) becomes NaN."""
    return float("nan") if value is None else float(value)


SEGMENT = "seg_0"  # the breakdown column as experiment_predictions names it


def segment_metric_stats(con: Any, exp: Any, m: Metric) -> dict[str, dict[str, Any]]:
    """Per segment value and arm, the sufficient statistics of ``m``: ``{value: {arm: stats}}``, in the engine.

    ``exp`` carries the breakdown column as ``seg_0`` (:func:`workbench.sources.experiment.experiment_predictions`
    with one segment). Each observation counts in the segment of the prediction it is about. Proportions:
    ProportionStats (n, successes); means: Moments of the value; ratios: Moments over units of (Σ value,
    observations) within the segment (a unit seen in two segment values counts in each with its own rows).
    """
    obs = observations(con, exp, m, carry=(SEGMENT,))
    if m.kind == "ratio":
        per_unit = obs.group_by([SEGMENT, "arm", "unit"]).aggregate(y=obs.value.sum(), m=obs.count().cast("float64"))
        return moments_by(per_unit, [SEGMENT, "arm"], ["y", "m"], key=str)
    return segment_stats(obs, m.kind)


def segment_stats(obs: Any, kind: str) -> dict[str, dict[str, Any]]:
    """Per ``seg_0`` value and arm: ProportionStats of a 0/1 ``value`` (proportion), Moments of ``value`` (mean), or
    Moments of (``value``, ``den``) over rows (ratio: a units file's row is a unit)."""
    if kind == "ratio":
        return moments_by(obs, [SEGMENT, "arm"], ["value", "den"], key=str)
    if kind == "mean":
        return moments_by(obs, [SEGMENT, "arm"], ["value"], key=str)
    frame = obs.group_by([SEGMENT, "arm"]).aggregate(n=obs.count(), total=obs.value.sum()).execute()
    out: dict[str, dict[str, Any]] = {}
    for r in frame.itertuples():
        out.setdefault(str(getattr(r, SEGMENT)), {})[str(r.arm)] = ProportionStats(int(r.n), round(float(r.total)))
    return out


def segment_value_count(rows: Any) -> int:
    """Distinct values of the breakdown column (``seg_0``) among ``rows`` (missing counts as one)."""
    return int(rows[SEGMENT].nunique().execute())
