"""A/B aggregates from the sums the ingest keeps (per trace on each prediction row, per unit in ``unit_sums``).

The join path (:func:`workbench.abtest.summary_queries.event_summary`) joins every event to its prediction
and groups the events by unit a second time: at 10M events that join and grouping were ~2 of the analysis's
~4 s. The ingest keeps, on each prediction row, its trace's count of observations, positives, Σ value and
(for mean metrics) the values themselves (:data:`workbench.sources.trace_feedback.EXPERIMENT`). So here the
per-unit sums of every metric come from the same GROUP BY (unit, arm) that counts the SRM units, or, for
the whole experiment, from the per-unit sums the ingest keeps too (:mod:`workbench.sources.unit_sums`); the
daily proportions come from one GROUP BY (arm, day) of the predictions, and a mean metric's event values are
unnested from the rows that hold any. Rows and readers are those of :mod:`workbench.abtest.summary_queries`:
the same :class:`UnitSummary` and :class:`EventAggregates` (tested equal to the join path's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.abtest.summary_queries import (
    COVARIATE_MOMENTS,
    EVENT_COLUMNS,
    MOMENTS,
    SRM_COLUMNS,
    EventAggregates,
    UnitSummary,
    cap_and_values,
    read_event_summary,
    read_unit_summary,
    srm_branches,
    unit_moments,
)
from workbench.sources import unit_sums
from workbench.sources.experiment import Metric, experiment_columns, hidden, trace_observations, units_by_arm

COLUMNS = (*EVENT_COLUMNS, "srm", "seg", "first", "last")  # SRM rows: part 'srm', srm = unit_summary's part


def kept_summary(
    exp: Any,
    n_segments: int,
    metrics: list[Metric],
    capping_percentile: float,
    nonzero_only: bool,
    pre: Any | None = None,
    units: Any | None = None,
) -> list[Any]:
    """The queries for the SRM inputs and every metric's aggregates, from ``exp`` (:func:`experiment_predictions`
    with :func:`kept_columns`); ``pre``: the pre-period's predictions shaped alike (CUPED's covariate).

    Rows in :data:`COLUMNS`: part ``srm`` as :func:`unit_summary`'s rows (``srm`` its part number, ``rows`` the
    units); ``unit``, ``day``, ``cap``, ``value`` as :func:`event_summary`'s; ``unit_day`` a ratio metric's
    Moments of (y, m) over each day's units. A metric's units are those with at least one observation of it.
    ``units``: the whole experiment's per-unit sums kept by the ingest (:func:`kept_units`) instead of grouping
    ``exp`` by (unit, arm). One query per pass over the predictions (units; days; each mean metric's values;
    each ratio's unit-days): in one query DuckDB would materialise the experiment's rows (lists included) for
    its several readers, which measured 1.8–2.3 s against ~1.1 s for the separate queries at 5M predictions.
    """
    import ibis

    observed = {i: trace_observations(exp, m) for i, m in enumerate(metrics)}
    sums = {**{f"y{i}": s for i, (_c, s) in observed.items()}, **{f"m{i}": c for i, (c, _s) in observed.items()}}
    if units is None:
        units = units_by_arm(exp, n_segments, sums)
    unit_branches = [_srm_row(b) for b in srm_branches(units, n_segments)]
    if pre is not None:
        pre_sums = {f"z{i}": trace_observations(pre, m)[1].sum() for i, m in enumerate(metrics)}
        pre_units = pre.group_by("unit").aggregate(**pre_sums)
        joined = units.left_join(pre_units, "unit")
        units = joined.select(*units.columns, **{z: joined[z].fill_null(0.0) for z in pre_sums})
    per_arm = units.group_by("arm").aggregate(**_unit_moments(units, len(metrics), pre is not None))
    proportions = [i for i, m in enumerate(metrics) if m.kind == "proportion"]
    daily = exp.group_by(["arm", "day"]).aggregate(
        **{k: sums[k].sum() for i in proportions for k in (f"y{i}", f"m{i}")}
    )
    day_branches, other = [], []
    for i, m in enumerate(metrics):
        name = ibis.literal(m.name, "string")
        seen = per_arm.filter(per_arm[f"rows{i}"] > 0)  # an arm without observations has no row (as the join's)
        moments = {c: seen[f"{c}{i}"] for c in (*MOMENTS, *(COVARIATE_MOMENTS if pre is not None else ()))}
        unit_branches.append(seen.select(**_row("unit", metric=name, arm=seen.arm, **moments)))
        if m.kind == "ratio":
            other.append([_ratio_days(exp, observed[i], name)])
        elif m.kind == "mean":
            other.append(_value_branches(exp, m, name, capping_percentile, nonzero_only))
        else:
            days = daily.filter(daily[f"m{i}"] > 0)
            day_branches.append(days.select(**_row("day", metric=name, arm=days.arm, day=days.day,
                                                  rows=days[f"m{i}"], total=days[f"y{i}"])))  # fmt: skip
    types = _types(exp.day.type(), exp.ts.type())
    queries = [unit_branches, *([day_branches] if day_branches else []), *other]
    return [_union(branches, types) for branches in queries]


def kept_units(con: Any, segments: list[str], metrics: list[Metric]) -> Any:
    """The ingest's per-unit sums (:mod:`workbench.sources.unit_sums`) shaped as :func:`kept_summary` groups them
    from the predictions: ``unit, arm, first, last, crossed, seg_<i>`` and each metric's ``y<i>``, ``m<i>``."""
    t = con.table(unit_sums.TABLE)
    return t.select(
        "unit", "arm", "first", "last", "crossed",
        **{f"seg_{i}": t[unit_sums.segment_name(c)] for i, c in enumerate(segments)},
        **{f"y{i}": t[f"y__{m.name}"] for i, m in enumerate(metrics)},
        **{f"m{i}": t[f"m__{m.name}"] for i, m in enumerate(metrics)},
    )  # fmt: skip


def _unit_moments(units: Any, n_metrics: int, cuped: bool) -> dict[str, Any]:
    """Per metric i the Moments inputs of (y, m[, z]) over the units with an observation (``rows{i}``, …)."""
    out = {}
    for i in range(n_metrics):
        z = units[f"z{i}"] if cuped else None
        moments = unit_moments(units, units[f"y{i}"], units[f"m{i}"].cast("float64"), z, where=units[f"m{i}"] > 0)
        out |= {f"{name}{i}": value for name, value in moments.items()}
    return out


def _ratio_days(exp: Any, observed: tuple[Any, Any], name: Any) -> Any:
    """A ratio metric's daily Moments of (y, m) over the day's units (as ``unit_stats(obs, by_day=True)``)."""
    c, s = observed
    per_unit = exp.group_by(["arm", "day", "unit"]).aggregate(y=s.sum(), m=c.sum().cast("float64"))
    days = per_unit.group_by(["arm", "day"]).aggregate(**unit_moments(per_unit, per_unit.y, per_unit.m))
    return days.select(**_row("unit_day", metric=name, **{c: days[c] for c in days.columns}))


def _value_branches(exp: Any, m: Metric, name: Any, capping_percentile: float, nonzero_only: bool) -> list[Any]:
    """A mean metric's event values, unnested from the rows that hold any: per arm and day n, Σ, mean, var;
    the capping threshold; per arm each distinct value's count (as :func:`event_summary`'s branches)."""
    column = exp[hidden(experiment_columns(m)["values"])]
    held = exp.filter(column.notnull())
    obs = held.select("arm", "day", value=held[column.get_name()].unnest())
    days = obs.group_by(["arm", "day"]).aggregate(
        rows=obs.count(), total=obs.value.sum(), mean=obs.value.mean(), var=obs.value.var()
    )
    return [
        days.select(**_row("day", metric=name, **{c: days[c] for c in days.columns})),
        *cap_and_values(obs, name, capping_percentile, nonzero_only, _row),
    ]


def _srm_row(branch: Any) -> Any:
    """An SRM branch (:data:`SRM_COLUMNS`) as a row of :data:`COLUMNS` (``rows`` holds its units)."""
    import ibis

    return branch.select(part=ibis.literal("srm", "string"), arm=branch.arm, rows=branch.units,
                         srm=branch.part, seg=branch.seg, first=branch.first, last=branch.last)  # fmt: skip


def _types(day_type: Any, ts_type: Any) -> dict[str, Any]:
    """The type of each column of :data:`COLUMNS` but ``part``."""
    return {"metric": "string", "arm": "string", "day": day_type, "value": "float64", "rows": "int64",
            **{c: "float64" for c in EVENT_COLUMNS[6:]}, "srm": "int64", "seg": "string", "first": ts_type,
            "last": ts_type}  # fmt: skip


def _row(part: str, **values: Any) -> dict[str, Any]:
    """A branch's row: its part and the columns it has (the union fills in the others)."""
    import ibis

    return {"part": ibis.literal(part, "string"), **values}


def _union(branches: list[Any], types: dict[str, Any]) -> Any:
    """One query of ``branches``: each with the columns any of them has (typed nulls where it has none), in
    :data:`COLUMNS` order; a column no branch has is left out (the reader takes it as missing), which keeps the
    expression small: compiling it was a tenth of the analysis."""
    import ibis

    present = {c for b in branches for c in b.columns}
    columns = [c for c in COLUMNS[1:] if c in present]
    rows = [b.select(part=b.part, **{c: b[c].cast(types[c]) if c in b.columns else ibis.null(types[c])
                                     for c in columns}) for b in branches]  # fmt: skip
    return ibis.union(*rows, distinct=False)


@dataclass(frozen=True)
class KeptSummary:
    """What :func:`kept_summary` returns, read: the SRM inputs and each metric's aggregates."""

    units: UnitSummary
    metrics: dict[str, EventAggregates]


def read_kept_summary(
    frame: Any, metrics: list[Metric], n_segments: int, max_values: int, cuped: bool = False
) -> KeptSummary:
    """The :class:`KeptSummary` of :func:`kept_summary`'s rows, its queries' frames concatenated (through the
    join path's two readers)."""
    srm = frame[frame["part"] == "srm"]
    srm = srm.assign(part=srm["srm"], units=srm["rows"])[list(SRM_COLUMNS)]
    events = frame[frame["part"] != "srm"]
    return KeptSummary(read_unit_summary(srm, n_segments, max_values),
                       read_event_summary(events, metrics, cuped=cuped))  # fmt: skip
