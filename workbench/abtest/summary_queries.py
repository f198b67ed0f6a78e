"""One query per side of an A/B test: the SRM inputs from the predictions, every event metric's aggregates.

Each is a UNION ALL of small GROUP BYs over one shared subexpression (the units per arm, the feedback joined
to the arms), which Ibis emits as a CTE and DuckDB streams to every branch at once: the big tables are
scanned and joined a single time, with no temporary table and nothing materialised. Readers turn the rows
back into the objects of :mod:`workbench.abtest.queries`'s one-aggregate-per-query functions, which stay for
per-prediction metrics (and as the reference the tests compare against).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import partial
from typing import Any

from workbench.abtest.queries import as_date, as_float
from workbench.sources.experiment import Metric, units_by_arm
from workbench.stats.abtest import Moments, ProportionStats


def unit_summary(exp: Any, n_segments: int) -> Any:
    """One query for the SRM inputs: per arm units and first/last ts, per segment value and arm units, crossover.

    Rows ``part, seg, arm, units, first, last``: part −1 is an arm's total, 0…k−1 the segment of that index,
    −2 the units seen in more than one arm. The per-(unit, arm) table is a CTE every branch reads as it
    streams by, so the predictions are scanned and grouped a single time.
    """
    import ibis

    units = units_by_arm(exp, n_segments)
    return ibis.union(*srm_branches(units, n_segments), distinct=False)


SRM_COLUMNS = ("part", "seg", "arm", "units", "first", "last")


def srm_branches(units: Any, n_segments: int) -> list[Any]:
    """:func:`unit_summary`'s rows from the per-(unit, arm) table ``units`` (:func:`units_by_arm`), as one
    table per part with the columns :data:`SRM_COLUMNS`. A boolean column ``crossed`` in ``units`` (true on
    one row of each unit seen in several arms) counts the crossed units instead of grouping by unit again."""
    import ibis

    ts_type = units.first.type()
    no_ts, no_seg = ibis.null(ts_type), ibis.null("string")

    def part(index: int, seg: Any, arm: Any, units_: Any, first: Any, last: Any) -> dict[str, Any]:
        return {"part": ibis.literal(index, "int64"), "seg": seg, "arm": arm, "units": units_, "first": first,
                "last": last}  # fmt: skip

    arms = units.group_by("arm").aggregate(units=units.count(), first=units.first.min(), last=units.last.max())
    branches = [arms.select(**part(-1, no_seg, arms.arm, arms.units, arms.first, arms.last))]
    for i in range(n_segments):
        seg = units.group_by([units[f"seg_{i}"].name("seg"), "arm"]).aggregate(units=units.count())
        branches.append(seg.select(**part(i, seg.seg, seg.arm, seg.units, no_ts, no_ts)))
    if "crossed" in units.columns:  # kept per-unit sums: one row of each unit seen in several arms is marked
        crossed = units.aggregate(units=units.count(where=units.crossed))
    else:
        per_unit = units.group_by("unit").aggregate(k=units.count())
        crossing = per_unit.filter(per_unit.k > 1)
        crossed = crossing.aggregate(units=crossing.count())
    branches.append(crossed.select(**part(-2, no_seg, ibis.null("string"), crossed.units, no_ts, no_ts)))
    return [b.select(*SRM_COLUMNS) for b in branches]


@dataclass(frozen=True)
class UnitSummary:
    """What :func:`unit_summary` returns, read: units per arm (sorted), period, per-segment counts, crossover."""

    counts: dict[str, int]
    first: dt.datetime | None
    last: dt.datetime | None
    segments: list[dict[str, dict[str, int]]]
    crossover: int


def read_unit_summary(frame: Any, n_segments: int, max_values: int) -> UnitSummary:
    """The :class:`UnitSummary` of :func:`unit_summary`'s rows (as :func:`arm_units`, :func:`period`,
    :func:`segment_units` and :func:`crossover_units` give them; a segment above ``max_values`` values is {})."""
    rows = frame.to_dict("records")
    arms = sorted((r for r in rows if r["part"] == -1), key=lambda r: str(r["arm"]))
    counts = {str(r["arm"]): int(r["units"]) for r in arms}
    firsts = [r["first"] for r in arms if r["first"] is not None and r["first"] == r["first"]]
    lasts = [r["last"] for r in arms if r["last"] is not None and r["last"] == r["last"]]
    first = min(firsts).to_pydatetime() if firsts else None
    last = max(lasts).to_pydatetime() if lasts and first is not None else None
    segments = []
    for i in range(n_segments):
        seg_rows = sorted((str(r["seg"]), str(r["arm"]), int(r["units"])) for r in rows if r["part"] == i)
        out: dict[str, dict[str, int]] = {}
        for value, arm, n in seg_rows:
            out.setdefault(value, {})[arm] = n
        segments.append({} if len(out) > max_values else out)
    crossover = sum(int(r["units"]) for r in rows if r["part"] == -2)
    return UnitSummary(counts, first, last, segments, crossover)


EVENT_COLUMNS = ("part", "metric", "arm", "day", "value", "rows", "mean_y", "mean_m", "var_y", "cov_ym", "var_m",
                 "total", "mean", "var", "cap", "mean_z", "cov_yz", "cov_mz", "var_z")  # fmt: skip


def event_row(part: str, day_type: Any, **values: Any) -> dict[str, Any]:
    """One row of :func:`event_summary`'s union: ``part`` and the :data:`EVENT_COLUMNS` given in ``values``
    (cast to the union's types), null for the others."""
    import ibis

    types = {"day": day_type, "value": ibis.dtype("float64"), "rows": ibis.dtype("int64"),
             **{c: ibis.dtype("float64") for c in EVENT_COLUMNS[6:]}}  # fmt: skip
    out = {"part": ibis.literal(part, "string")}
    for c in EVENT_COLUMNS[1:]:
        out[c] = values[c].cast(types[c]) if c in values and c in types else values.get(c, ibis.null(types.get(c)))
    return out


def event_summary(
    events: Any, metrics: list[Metric], capping_percentile: float, nonzero_only: bool, pre: Any | None = None
) -> Any:
    """One query for every event metric's aggregates over the joined events (:func:`event_observations`).

    Rows by ``part``: ``unit`` — per metric and arm the Moments inputs of (Σ value, observations) over units
    (as :func:`unit_stats`), with CUPED's covariate z when ``pre`` holds the pre-period events (each unit's
    Σ value of the same metric there, 0 when it had none, as :func:`unit_stats` with ``pre``); ``day`` — per
    metric, arm and day n, Σ, mean, var (as :func:`daily_event_stats`); for mean metrics ``cap`` — the
    capping threshold (as :func:`cap_value`), and ``value`` — per arm and distinct value its count, from
    which the reader takes the Mann–Whitney ranks (:func:`rank_sums_from_counts`) and the capped moments
    (:func:`capped_from_counts`, as :func:`capped_stats`).
    The join is a CTE that every branch reads as it streams by: feedback is joined a single time. No branch
    may depend on another's result (a capped mean needs the cap first): DuckDB would then materialise the
    4M joined rows of the benchmark for the second reader, which took longer than the whole join.
    """
    import ibis

    row = partial(event_row, day_type=events.day.type())
    per_unit = events.group_by(["metric", "arm", "unit"]).aggregate(
        y=events.value.sum(), m=events.count().cast("float64")
    )
    if pre is not None:
        pre_unit = pre.group_by(["metric", "unit"]).aggregate(z=pre.value.sum())
        joined = per_unit.left_join(pre_unit, ["metric", "unit"])
        per_unit = joined.select("metric", "arm", "unit", "y", "m", z=joined.z.fill_null(0.0))
    z = per_unit.z if pre is not None else None
    units = per_unit.group_by(["metric", "arm"]).aggregate(**unit_moments(per_unit, per_unit.y, per_unit.m, z))
    branches = [units.select(**row("unit", **{c: units[c] for c in units.columns}))]
    days = events.group_by(["metric", "arm", "day"]).aggregate(
        rows=events.count(), total=events.value.sum(), mean=events.value.mean(), var=events.value.var()
    )
    branches.append(days.select(**row("day", **{c: days[c] for c in days.columns})))
    for m in metrics:
        if m.kind != "mean" or m.per_prediction:
            continue
        obs = events.filter(events.metric == m.name)
        branches += cap_and_values(obs, ibis.literal(m.name, "string"), capping_percentile, nonzero_only, row)
    return ibis.union(*(b.select(*EVENT_COLUMNS) for b in branches), distinct=False)


MOMENTS = ("rows", "mean_y", "mean_m", "var_y", "cov_ym", "var_m")  # :func:`unit_moments`' columns
COVARIATE_MOMENTS = ("mean_z", "cov_yz", "cov_mz", "var_z")  # and with CUPED's covariate z


def unit_moments(table: Any, y: Any, m: Any, z: Any | None = None, where: Any | None = None) -> dict[str, Any]:
    """The aggregates a Moments of (y, m[, z]) is read from, over ``table``'s rows (those matching ``where``):
    :data:`MOMENTS` (and :data:`COVARIATE_MOMENTS` with ``z``): counts, means and the engine's one-pass centred
    var_samp/covar_samp, as :func:`moments_by`."""
    out = {"rows": table.count(where=where), "mean_y": y.mean(where=where), "mean_m": m.mean(where=where),
           "var_y": y.var(where=where), "cov_ym": y.cov(m, where=where), "var_m": m.var(where=where)}  # fmt: skip
    if z is not None:
        out |= {"mean_z": z.mean(where=where), "cov_yz": y.cov(z, where=where), "cov_mz": m.cov(z, where=where),
                "var_z": z.var(where=where)}  # fmt: skip
    return out


def cap_and_values(obs: Any, name: Any, capping_percentile: float, nonzero_only: bool, row: Any) -> list[Any]:
    """A mean metric's ``cap`` branch (the capping percentile of its values, of the non-zero ones with
    ``nonzero_only``, as :func:`cap_value`) and ``value`` branch (per arm each distinct value's count), from
    ``obs`` (``arm, value``); ``row`` builds a branch's row from its part and columns."""
    import ibis

    where = obs.value != 0 if nonzero_only else None
    threshold = obs.aggregate(cap=obs.value.quantile(capping_percentile, where=where))
    values = obs.group_by(["arm", "value"]).aggregate(rows=obs.count())
    return [
        threshold.select(**row("cap", metric=name, arm=ibis.null("string"), cap=threshold.cap)),
        values.select(**row("value", metric=name, **{c: values[c] for c in values.columns})),
    ]


@dataclass(frozen=True)
class EventAggregates:
    """One event metric's aggregates read from :func:`event_summary`: unit Moments, daily stats, capping, values.

    ``units`` are Moments of (y, m) per unit, or of (y, m, z) when the query had CUPED's pre-period (``cuped``).
    """

    units: dict[str, Moments]
    daily: dict[str, dict[dt.date, Any]]
    capped: dict[str, Moments] | None
    cap: float | None
    values: dict[str, dict[float, int]]
    cuped: bool = False


def read_event_summary(frame: Any, metrics: list[Metric], cuped: bool = False) -> dict[str, EventAggregates]:
    """Per metric name its :class:`EventAggregates` (the same objects the one-query-per-aggregate path builds).

    ``cuped``: the query had the pre-period (``event_summary(…, pre=…)``), unit Moments are of (y, m, z).
    Rows of part ``unit_day`` (a ratio metric's days, from :mod:`workbench.abtest.kept`) are its daily
    Moments of (y, m) over units, as :func:`unit_stats` with ``by_day``.
    """
    names = ("y", "m", "z") if cuped else ("y", "m")
    is_value = (frame["part"] == "value").to_numpy()
    rows = frame[~is_value].to_dict("records")
    counted = frame[is_value]  # thousands of rows: read by column, not row by row
    out = {}
    for m in metrics:
        mine = [r for r in rows if r["metric"] == m.name]
        units = {}
        daily: dict[str, dict[dt.date, Any]] = {}
        values: dict[str, dict[float, int]] = {}
        cap: float | None = None
        of_metric = counted[(counted["metric"] == m.name).to_numpy()]
        for arm, group in of_metric.groupby("arm", sort=False):
            values[str(arm)] = dict(zip(group["value"].astype(float).tolist(), group["rows"].astype(int).tolist(),
                                        strict=True))  # fmt: skip
        for r in mine:
            arm, part = str(r["arm"]), r["part"]
            if part == "unit":
                cov = [[as_float(r[_cov_column(a, b)]) for b in names] for a in names]
                units[arm] = Moments.from_moments(int(r["rows"]), [as_float(r[f"mean_{c}"]) for c in names], cov)
            elif part == "unit_day":  # a ratio metric's day: Moments of (y, m) over the day's units
                cov = [[as_float(r[_cov_column(a, b)]) for b in "ym"] for a in "ym"]
                moments = Moments.from_moments(int(r["rows"]), [as_float(r["mean_y"]), as_float(r["mean_m"])], cov)
                daily.setdefault(arm, {})[as_date(r["day"])] = moments
            elif part == "day":
                if m.kind == "proportion":
                    stats: Any = ProportionStats(int(r["rows"]), round(float(r["total"])))
                else:
                    stats = Moments.from_moments(int(r["rows"]), [r["mean"]], [[as_float(r["var"])]])
                daily.setdefault(arm, {})[as_date(r["day"])] = stats
            elif part == "cap":
                cap = None if r["cap"] is None or r["cap"] != r["cap"] else float(r["cap"])
        capped = capped_from_counts(values, cap) if cap is not None else None
        out[m.name] = EventAggregates(units, daily, capped, cap, values, cuped)
    return out


def _cov_column(a: str, b: str) -> str:
    """The event_summary column of the (co)variance of per-unit columns a and b (y, m, z)."""
    first, second = sorted((a, b), key="ymz".index)
    return f"var_{first}" if first == second else f"cov_{first}{second}"


def capped_from_counts(values: dict[str, dict[float, int]], cap: float) -> dict[str, Moments]:
    """Per arm Moments of min(value, cap) from the counts of each distinct value (as :func:`capped_stats`).

    Two passes over the distinct values, with exactly rounded sums (fsum): mean = Σ c·w / n and
    C = Σ c·(w − mean)² for w = min(value, cap), which the engine's one-pass var_samp matches to ~1e-15.
    """
    out = {}
    for arm, counts in values.items():
        n = sum(counts.values())
        capped = [(min(value, cap), count) for value, count in counts.items()]
        mean = math.fsum(w * c for w, c in capped) / n
        comoment = math.fsum(c * (w - mean) ** 2 for w, c in capped)
        out[arm] = Moments(n, (mean,), ((comoment,),))
    return out


def rank_sums_from_counts(
    values: dict[str, dict[float, int]], control: str, variant: str
) -> tuple[int, int, float, float]:
    """As :func:`rank_sums`, from the per-arm counts of each distinct value (exact integer arithmetic).

    A tie group of t values ending at cumulative count c has mid-rank c − (t − 1)/2; twice the rank sum
    Σ n_v·(2c − t + 1) is an integer, so the result is the engine's (whose float sums are exact at these sizes).
    """
    a, b = values.get(control, {}), values.get(variant, {})
    cumulative = twice_rank_sum = ties = 0
    for value in sorted(set(a) | set(b)):
        nv = b.get(value, 0)
        t = a.get(value, 0) + nv
        cumulative += t
        twice_rank_sum += nv * (2 * cumulative - t + 1)
        ties += t * t * t - t
    n_variant = sum(b.values())
    return sum(a.values()), n_variant, twice_rank_sum / 2, float(ties)
