"""Chunks of time or rows: what drift over time, performance and the trigger series read."""

from __future__ import annotations

import datetime as dt
from typing import Any

from workbench.core.errors import InputError
from workbench.sources import cursors

CHUNK_UNITS = {"day": "D", "week": "W"}
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
# (width, offset) in microseconds of each bucket unit: ISO weeks start on Monday, 1970-01-05 (the epoch is a Thursday)
_BUCKET_US = {"h": (HOUR_US, 0), "D": (DAY_US, 0), "W": (7 * DAY_US, 4 * DAY_US)}


def epoch_us(ts: Any) -> Any:
    """Microseconds since 1970-01-01 UTC of a DuckDB timestamp column, as BIGINT (DuckDB's builtin ``epoch_us``).

    Integer arithmetic: DuckDB's ``date_trunc`` of a TIMESTAMPTZ, and Ibis' ``epoch_seconds`` (compiled as
    ``epoch(CAST(ts AS TIMESTAMP))``), go through ICU's calendar. DuckDB only: callers check
    :func:`workbench.sources.cursors.on_duckdb` and give other engines Ibis' portable form.
    """
    import ibis

    @ibis.udf.scalar.builtin(name="epoch_us")
    def _epoch_us(ts) -> int:  # type: ignore[no-untyped-def]
        """Microseconds since 1970-01-01 UTC (DuckDB builtin; BigQuery calls it unix_micros)."""

    return _epoch_us(ts)


def seconds_between(later: Any, earlier: Any) -> Any:
    """``later − earlier`` in seconds (DOUBLE, with the microseconds): on DuckDB the difference of the two
    :func:`epoch_us` integers, exact; elsewhere the difference of Ibis' epoch seconds (Spark: micros / 10⁶)."""
    if cursors.on_duckdb(later):
        return (epoch_us(later) - epoch_us(earlier)) / 1_000_000
    return later.epoch_seconds() - earlier.epoch_seconds()


def utc_bucket(ts: Any, unit: str) -> Any:
    """The start of the UTC hour (``unit`` "h"), day ("D") or ISO week ("W", from Monday) of ``ts``, as a naive
    TIMESTAMP (= ``date_trunc(unit, ts::TIMESTAMP)`` with the session in UTC).

    On DuckDB integer arithmetic on the microseconds since the epoch, floored (``x − ((x − o) mod w + w) mod w``,
    also below 1970): DuckDB's ``date_trunc`` of a TIMESTAMPTZ goes through the calendar; on the 20M-row demo a
    day's bucket of every prediction cost 1.7 s that way, 0.2 s this way. Other engines (Spark, whose session
    time zone is UTC): the portable ``date_trunc``.
    """
    import ibis

    if unit not in _BUCKET_US:
        raise ValueError(f"unknown bucket unit {unit!r}: one of {', '.join(_BUCKET_US)}")
    if not cursors.on_duckdb(ts):
        return ts.truncate(unit).cast("timestamp")

    @ibis.udf.scalar.builtin(name="make_timestamp")
    def _make_timestamp(us: int) -> dt.datetime:
        """The naive TIMESTAMP of microseconds since the epoch (DuckDB builtin)."""

    width, offset = _BUCKET_US[unit]
    us = epoch_us(ts)
    return _make_timestamp(us - (((us - offset) % width) + width) % width)


def parse_chunk(chunk: str | int) -> str | int:
    """'day', 'week' or a number of rows (≥ 100) → the chunk spec; anything else is an InputError."""
    if isinstance(chunk, int) or (isinstance(chunk, str) and chunk.isdigit()):
        rows = int(chunk)
        if rows < 100:
            raise InputError(f"a chunk of rows needs at least 100 rows, not {rows}")
        return rows
    if chunk not in CHUNK_UNITS:
        raise InputError(f"chunk must be day, week or a number of rows, not '{chunk}'")
    return chunk


def chunk_key(table: Any, chunk: str | int) -> Any:
    """Ibis table with a ``chunk`` column: the day/week start, or the row block's index ordered by ts."""
    import ibis

    if isinstance(chunk, int):
        return table.mutate(chunk=(ibis.row_number().over(order_by=[table.ts, table.trace_id]) // chunk))
    return table.mutate(chunk=utc_bucket(table.ts, CHUNK_UNITS[chunk]))
