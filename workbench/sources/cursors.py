"""Named DuckDB relations and their cursors: independent engine queries side by side, in threads.

DuckDB runs the queries of different cursors (connections to one database) at the same time and releases
the GIL meanwhile, so a holistic aggregate finalised on one thread per query, a sample for the domain
classifier and the other window's counts can share the two cores. Other engines run one query at a time:
every helper here falls back to that.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from workbench.sources.store import quiet_utc


def as_view(table: Any, name: str) -> Any:
    """``table`` as a temporary view of its own connection (an Ibis table over the view).

    The feature queries then compile against one named relation instead of re-deriving the window's
    filter chain every time: Ibis' compile step, not the engine, dominated a new current window.
    """
    import ibis

    backend = table._find_backend()
    backend.raw_sql(f"CREATE OR REPLACE TEMP VIEW {name} AS {ibis.to_sql(table)}")
    return backend.table(name)


def one_database(a: Any, b: Any) -> bool:
    """Whether two Ibis tables live in the same database connection (one query may read both, e.g. a union);
    a reference file and a store window do not."""
    return a._find_backend().con is b._find_backend().con


def on_duckdb(expr: Any) -> bool:
    """Whether ``expr`` (an Ibis table or column) runs on DuckDB, where the DuckDB builtins our queries call
    for speed (``epoch_us``, ``make_timestamp``, integer ``divide``) exist; other engines take Ibis' portable form."""
    return expr._find_backend().name == "duckdb"


def pulls_values(table: Any) -> bool:
    """Whether an analysis may pull ``table``'s column values into Python (the exact KS's sorted values).

    DuckDB runs in this process, so a pull is a copy; from Spark only aggregates come back (a pull would ship
    rows proportional to the data from the cluster to this machine): its tables say no.
    """
    return table._find_backend().name != "pyspark"


def has_cursors(table: Any) -> bool:
    """Whether ``table`` is a named relation of a DuckDB database (so :func:`on_cursor` can rebind it)."""
    import ibis.expr.operations as ops

    return table._find_backend().name == "duckdb" and isinstance(table.op(), ops.DatabaseTable)


@contextmanager
def on_cursor(table: Any) -> Iterator[Any]:
    """``table`` bound to a new cursor of its DuckDB database (its connection's temp views copied), else ``table``.

    DuckDB runs the queries of different cursors at the same time and releases the GIL meanwhile, so
    independent aggregates (the two halves of the quantiles, the other window's counts, the domain
    classifier's sample) can run in threads. A cursor is a new connection: temporary views (a file's,
    a window's) and the session settings belong to one connection and are recreated on it. The
    cursor is closed on exit (an open one would keep the store's file open). Open it in the thread owning
    the connection (DuckDB refuses a second call on a busy connection), then hand it to a worker. Other
    engines, and tables that are not a named relation, are yielded as they are (callers then run serially:
    see :func:`has_cursors`).
    """
    import ibis

    if not has_cursors(table):
        yield table
        return
    backend = table._find_backend()
    cursor = backend.con.cursor()
    try:
        quiet_utc(cursor)
        views = backend.con.execute(
            "SELECT sql FROM duckdb_views() WHERE database_name = 'temp' AND NOT internal ORDER BY view_oid"
        ).fetchall()
        for (sql,) in views:
            cursor.execute(sql)
        clone = ibis.duckdb.from_connection(cursor)  # the same compiler and conversions, another connection
        op = table.op()
        yield clone.table(op.name, database=op.namespace.database or None)
    finally:
        cursor.close()


def concurrently(calls: list[Any], workers: int = 2) -> list[Any]:
    """The results of the zero-argument ``calls``, ``workers`` at a time in threads (each call on its own cursor:
    see :func:`on_cursor`)."""
    from concurrent.futures import ThreadPoolExecutor

    if len(calls) < 2:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=min(workers, len(calls))) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result() for f in futures]
