"""Chunks of time or rows, and each trace's latest label: what drift over time, performance and label drift read."""

from __future__ import annotations

from typing import Any

from workbench.core.errors import InputError

CHUNK_UNITS = {"day": "D", "week": "W"}


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
    return table.mutate(chunk=table.ts.truncate(CHUNK_UNITS[chunk]))


def labels_per_trace(con: Any, kinds: tuple[str, ...]) -> tuple[Any, str | None]:
    """(Ibis table ``trace_id, label``: the latest label of each trace from feedback of ``kinds``, a note or None).

    Explicit corrections are chosen by users on wrong predictions, so they bias realised accuracy
    down; by default only automated outcome labels count. With none of those kinds, every labelled
    feedback counts and the note says so.
    """
    f = con.table("feedback")
    labelled = f.filter(f.label.notnull())
    note = None
    if kinds:
        chosen = labelled.filter(labelled.kind.isin(list(kinds)))
        if chosen.count().execute() > 0:
            labelled = chosen
        else:
            note = f"no labelled feedback of kind {', '.join(kinds)}: labels from every kind are used"
    return labelled.group_by("trace_id").aggregate(label=labelled.label.argmax(labelled.ts)), note
