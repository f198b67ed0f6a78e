"""Files as Ibis tables: a CSV, Parquet or JSON Lines file read in place by an in-memory DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench.core.errors import InputError
from workbench.core.files import detect_format
from workbench.sources.store import bounded, quiet_utc


@contextmanager
def file_table(path: str | Path, materialize: bool = False) -> Iterator[Any]:
    """Yield an Ibis table over a CSV/Parquet/JSON Lines file (types inferred by DuckDB), in memory.

    A file that cannot be read is bad input: one line naming the file and the reader's first complaint.
    ``materialize``: the rows are read once into a TEMP table, for callers that run several queries over a
    file (a CSV is otherwise parsed again by every query); without it each query scans the file itself.
    """
    import ibis

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    fmt, _ = detect_format(path)
    con = bounded(quiet_utc(ibis.duckdb.connect()))
    try:
        reader = {"csv": con.read_csv, "parquet": con.read_parquet, "json": con.read_json}[fmt]
        table = reader(str(path))
        if materialize:
            table = con.create_table("file_rows", obj=table, temp=True)
    except Exception as exc:  # the reader's message names the problem; one line for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path.name}: cannot be read as {fmt}: {first[:160]}") from None
    try:
        yield table
    finally:
        con.disconnect()
