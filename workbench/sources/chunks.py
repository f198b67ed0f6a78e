"""Chunks of time or rows, and each trace's latest label: what drift over time, performance and label drift read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
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


@dataclass(frozen=True)
class TraceLabels:
    """Each trace's latest label of the chosen kinds, to put beside prediction rows (:meth:`on`).

    ``table`` (Ibis ``trace_id, label``) groups the labelled feedback by trace; ``column``, when set, is the
    predictions' copy of the same label kept by the ingest (:data:`~workbench.sources.trace_feedback.LABEL`),
    read instead of the group and its join wherever the rows carry it (a window of the store's predictions, not
    a file). At 20M predictions (2 cores) the estimated accuracy's two joins took 4.9 s of its 7.3 s.
    """

    table: Any
    column: str | None = None

    def kept_in(self, *rows: Any) -> bool:
        """Whether every one of ``rows`` (Ibis tables) carries the kept copy."""
        return self.column is not None and all(self.column in r.columns for r in rows)

    def on(self, rows: Any, inner: bool = False) -> Any:
        """``rows`` (with ``trace_id``) with a ``label`` column: null without a label, or (``inner``) only the
        labelled rows."""
        if self.kept_in(rows):
            rows = rows.mutate(label=rows[self.column])
            return rows.filter(rows.label.notnull()) if inner else rows
        if "label" in rows.columns:  # a predictions column of that name (a feature): the feedback's label wins
            rows = rows.drop("label")
        return rows.inner_join(self.table, "trace_id") if inner else rows.left_join(self.table, "trace_id")


def labels_per_trace(con: Any, kinds: tuple[str, ...], within: Any = None) -> tuple[TraceLabels, str | None]:
    """(each trace's latest label from feedback of ``kinds``, a note or None; of labels at the same time the larger,
    :func:`~workbench.sources.trace_feedback.latest_label`).

    Explicit corrections are chosen by users on wrong predictions, so they bias realised accuracy
    down; by default only automated outcome labels count. With none of those kinds, every labelled
    feedback counts and the note says so. ``within`` (a table with ``trace_id``): only those traces' labels
    are grouped (a window of a few days: the feedback matched with it first instead of every label grouped); the
    kinds are chosen on the whole feedback all the same, so a window's labels count as every other window's.
    When the kinds are the ingest's kept ones and its copies are current (a DuckDB store), the labels are read
    from the predictions' kept column instead (:class:`TraceLabels`).
    """
    from workbench.sources import trace_feedback

    f = con.table("feedback")
    labelled = f.filter(f.label.notnull())
    note = None
    kept = False
    if kinds:
        chosen = labelled.filter(labelled.kind.isin(list(kinds)))
        if chosen.count().execute() > 0:
            labelled = chosen
            kept = tuple(kinds) == trace_feedback.KEPT_LABEL_KINDS and trace_feedback.copies_current(con)
        else:
            note = f"no labelled feedback of kind {', '.join(kinds)}: labels from every kind are used"
    if within is not None:
        labelled = labelled.semi_join(within.select("trace_id"), "trace_id")
    table = labelled.group_by("trace_id").aggregate(label=trace_feedback.latest_label(labelled))
    return TraceLabels(table, trace_feedback.kept_label_column() if kept else None), note
