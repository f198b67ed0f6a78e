"""Each experiment unit's sums, kept by the ingest: the whole-experiment A/B analysis reads units, not predictions.

With the per-trace sums on the prediction rows (:mod:`workbench.sources.trace_feedback`) the A/B analysis
still groups every prediction by (unit, arm): ~1 s of CPU at 5M predictions and 1M units on 2 cores, the
floor of any analysis that reads predictions. So the ingest keeps, in the same transaction as the copies,
the table ``unit_sums``: one row per (unit, arm) of the predictions with an arm, the unit's first and last
prediction ts, whether it is the first arm's row of a unit seen in several arms (the SRM's crossover count),
the value of each segment column (the stored sensitive and categorical roles) at the unit's first prediction,
and every A/B metric's per-unit sums (``y__<metric>``: Σ value, ``m__<metric>``: observations),
exactly as :func:`workbench.sources.experiment.units_by_arm` gives them over all predictions. Each ingest
recomputes the units it touched (its predictions' units, or the units of the traces its feedback names).

The analysis reads the table only for the whole experiment (no window) with arms from the ``arm`` role and
segments among the kept ones, while the copies' stamp is current (it also names the kept segments); a window,
model-version arms or another segment group the predictions as before (same numbers, tested).
"""

from __future__ import annotations

from typing import Any

import duckdb

from workbench.sources.experiment import METRICS, experiment_predictions, kept_columns, trace_observations, units_by_arm
from workbench.sources.store import q, stored_roles, table_columns

TABLE = "unit_sums"
VERSION = 2  # bump when a column's meaning changes (2: a tie on the first ts takes the least segments)
_TOUCHED = "__touched_units"
_NEW = "__new_units"


def segment_columns(con: duckdb.DuckDBPyConnection, present: list[str] | None = None) -> list[str]:
    """The columns whose first-exposure value the table keeps: the stored sensitive and categorical roles
    (those among the predictions' columns, ``present`` when the caller has them)."""
    roles = stored_roles(con).predictions
    present = list(table_columns(con, "predictions")) if present is None else present
    return [c for c in dict.fromkeys([*roles.sensitive, *(roles.categorical or [])]) if c in present]


def columns(segments: list[str]) -> list[str]:
    """The table's columns for these segment columns (a table of another shape is rebuilt, not read)."""
    sums = [f"{side}__{name}" for name in METRICS for side in ("y", "m")]
    return ["unit", "arm", "first", "last", "crossed", *(segment_name(c) for c in segments), *sums]


def segment_name(column: str) -> str:
    """The table's column holding ``column``'s value at the unit's first prediction."""
    return f"seg__{column}"


def units_expr(backend: Any, segments: list[str], touched: Any | None = None, ingest_id: int | None = None) -> Any:
    """The table's rows as an Ibis expression over ``backend``'s predictions and their kept per-trace sums
    (``touched``: only those units). ``crossed`` marks the first arm's row of a unit seen in several arms.
    ``ingest_id``: the rows of that ingest's predictions alone, without ``crossed`` (:func:`merge_new`)."""
    import ibis

    metrics = list(METRICS.values())
    exp, _source = experiment_predictions(backend, None, "arm", tuple(segments), kept_columns(metrics), ingest_id)
    if touched is not None:
        exp = exp.filter(exp.unit.isin(touched.unit))
    sums = {}
    for m in metrics:
        c, s = trace_observations(exp, m)
        sums |= {f"y__{m.name}": s, f"m__{m.name}": c}
    units = units_by_arm(exp, len(segments), sums)
    if ingest_id is None:
        per_unit = ibis.window(group_by="unit")  # a touched unit is recomputed with all its arms: the mark holds
        crossed = (units.count().over(per_unit) > 1) & (units.arm == units.arm.min().over(per_unit))
        units = units.mutate(crossed=crossed)
    return units.rename({segment_name(c): f"seg_{i}" for i, c in enumerate(segments)})


def rebuild(con: duckdb.DuckDBPyConnection, segments: list[str]) -> None:
    """Write the whole table from the predictions (caller's transaction)."""
    import ibis

    sql = ibis.to_sql(units_expr(ibis.duckdb.from_connection(con), segments), dialect="duckdb")
    con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS {sql}")


def update(con: duckdb.DuckDBPyConnection, segments: list[str], touched_sql: str, params: list[Any]) -> None:
    """Recompute the rows of the units ``touched_sql`` selects (one column, the unit), in the caller's transaction."""
    import ibis

    con.execute(f"CREATE OR REPLACE TEMP TABLE {_TOUCHED} AS {touched_sql}", params)
    backend = ibis.duckdb.from_connection(con)
    sql = ibis.to_sql(units_expr(backend, segments, backend.table(_TOUCHED)), dialect="duckdb")
    con.execute(f"DELETE FROM {TABLE} WHERE unit IN (SELECT unit FROM {_TOUCHED})")
    con.execute(f"INSERT INTO {TABLE} BY NAME {sql}")
    con.execute(f"DROP TABLE {_TOUCHED}")


def merge_new(con: duckdb.DuckDBPyConnection, segments: list[str], ingest_id: int) -> None:
    """Fold the predictions ingest ``ingest_id`` added into the table (caller's transaction), as
    :func:`update` of their units would, without reading the units' older predictions again.

    The new rows are grouped by (unit, arm) alone, then merged with each pair's row: sums add up, ``last``
    is the greater, and ``first`` with its segments is the least ``(first, segments…)`` of the two, as one
    ``min`` over all the rows gives (a min of mins); a new pair is inserted; ``crossed`` is marked again for
    the units it touched. New predictions are new traces (the ingest's repeat rule), so their kept sums (an
    orphan feedback's, copied before this) count once. Same rows as :func:`update` (floating sums added in
    another order: to the last bits); at 20M predictions it read the whole table per demo chunk (1.2 s at
    the last one).
    """
    import ibis

    backend = ibis.duckdb.from_connection(con)
    sql = ibis.to_sql(units_expr(backend, segments, ingest_id=ingest_id), dialect="duckdb")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_NEW} AS {sql}")
    firsts = ["first", *(segment_name(c) for c in segments)]
    key = lambda side: "{" + ", ".join(f"'k{i}': {side}.{q(c)}" for i, c in enumerate(firsts)) + "}"  # noqa: E731
    earlier = f"{key('n')} < {key(TABLE)}"
    sums = [c for c in columns(segments) if c.startswith(("y__", "m__"))]
    sets = [*(f"{q(c)} = CASE WHEN {earlier} THEN n.{q(c)} ELSE {TABLE}.{q(c)} END" for c in firsts),
            f"{q('last')} = greatest({TABLE}.{q('last')}, n.{q('last')})",
            *(f"{q(c)} = {TABLE}.{q(c)} + n.{q(c)}" for c in sums)]  # fmt: skip
    con.execute(f"UPDATE {TABLE} SET {', '.join(sets)} FROM {_NEW} n "
                f"WHERE {TABLE}.unit = n.unit AND {TABLE}.arm = n.arm")  # fmt: skip
    con.execute(f"INSERT INTO {TABLE} BY NAME SELECT n.*, false AS crossed FROM {_NEW} n "
                f"WHERE NOT EXISTS (SELECT 1 FROM {TABLE} u WHERE u.unit = n.unit AND u.arm = n.arm)")  # fmt: skip
    con.execute(f"""
        UPDATE {TABLE} SET crossed = c.crossed
        FROM (SELECT unit, arm, count(*) OVER (PARTITION BY unit) > 1 AND arm = min(arm) OVER (PARTITION BY unit)
                     AS crossed
              FROM {TABLE} WHERE unit IN (SELECT unit FROM {_NEW})) c
        WHERE {TABLE}.unit = c.unit AND {TABLE}.arm = c.arm AND {TABLE}.crossed IS DISTINCT FROM c.crossed""")
    con.execute(f"DROP TABLE {_NEW}")


def touched_by_traces(traces_table: str, also: str = "") -> tuple[str, list[Any]]:
    """The units of the predictions (with an arm) of the traces listed in ``traces_table`` (``also``: more of the
    WHERE clause, such as the traces' bounds)."""
    return ("SELECT DISTINCT coalesce(unit_id, trace_id) AS unit FROM predictions "
            f"WHERE arm IS NOT NULL AND trace_id IN (SELECT trace_id FROM {traces_table}){also}", [])  # fmt: skip
