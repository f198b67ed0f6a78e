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
from workbench.sources.store import stored_roles, table_columns

TABLE = "unit_sums"
VERSION = 3  # bump when a column's meaning changes (3: a tie on the first ts takes the smaller trace id's segments)
_TOUCHED = "__touched_units"


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


def units_expr(backend: Any, segments: list[str], touched: Any | None = None) -> Any:
    """The table's rows as an Ibis expression over ``backend``'s predictions and their kept per-trace sums
    (``touched``: only those units). ``crossed`` marks the first arm's row of a unit seen in several arms."""
    import ibis

    metrics = list(METRICS.values())
    exp, _source = experiment_predictions(backend, None, "arm", tuple(segments), kept_columns(metrics))
    if touched is not None:
        exp = exp.filter(exp.unit.isin(touched.unit))
    sums = {}
    for m in metrics:
        c, s = trace_observations(exp, m)
        sums |= {f"y__{m.name}": s, f"m__{m.name}": c}
    units = units_by_arm(exp, len(segments), sums)
    per_unit = ibis.window(group_by="unit")  # a touched unit is recomputed with all its arms: the mark holds
    units = units.mutate(crossed=(units.count().over(per_unit) > 1) & (units.arm == units.arm.min().over(per_unit)))
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


def touched_by_predictions(ingest_id: int) -> tuple[str, list[Any]]:
    """The units of the predictions ingest ``ingest_id`` added (those with an arm)."""
    return ("SELECT DISTINCT coalesce(unit_id, trace_id) AS unit FROM predictions "
            "WHERE ingest_id = ? AND arm IS NOT NULL", [ingest_id])  # fmt: skip


def touched_by_traces(traces_table: str, also: str = "") -> tuple[str, list[Any]]:
    """The units of the predictions (with an arm) of the traces listed in ``traces_table`` (``also``: more of the
    WHERE clause, such as the traces' bounds)."""
    return ("SELECT DISTINCT coalesce(unit_id, trace_id) AS unit FROM predictions "
            f"WHERE arm IS NOT NULL AND trace_id IN (SELECT trace_id FROM {traces_table}){also}", [])  # fmt: skip
