"""The embedded store: one DuckDB file with the two streams, quarantine and metadata.

DuckDB lets one process write a file at a time, and a process holding it open (even read-only)
keeps writers out. So every caller opens a short-lived connection, read-only where it only reads,
and a lock held by another process is retried briefly before a one-line :class:`StoreBusyError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from workbench.core.errors import InputError, ReadOnlyError, StoreBusyError
from workbench.core.paths import READ_ONLY_ENV, read_only
from workbench.core.schema import Roles

DEFAULT_DB = Path("data") / "workbench.duckdb"
LOCK_TIMEOUT_S = 15.0
ENGINE_MEMORY_ENV = "WORKBENCH_DUCKDB_MEMORY"
ENGINE_MEMORY = "1GiB"  # an analysis' DuckDB buffers; beyond them hash tables and sorts spill to disk
ENGINE_MEMORY_MIN = 64 * 10**6  # below this DuckDB cannot run the analyses' queries at all
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip

STORE_DDL = """
CREATE TABLE IF NOT EXISTS predictions (
    trace_id VARCHAR, ts TIMESTAMPTZ, model_version VARCHAR, prediction TINYINT,
    score DOUBLE, arm VARCHAR, unit_id VARCHAR, ingest_id BIGINT);
CREATE TABLE IF NOT EXISTS feedback (
    trace_id VARCHAR, ts TIMESTAMPTZ, kind VARCHAR, type VARCHAR, value DOUBLE,
    label TINYINT, ingest_id BIGINT);
CREATE TABLE IF NOT EXISTS quarantine (
    ingest_id BIGINT, table_name VARCHAR, source VARCHAR, row_number BIGINT,
    raw VARCHAR, reason VARCHAR, quarantined_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS ingests (
    ingest_id BIGINT, table_name VARCHAR, source VARCHAR, ingested_at TIMESTAMPTZ,
    accepted BIGINT, duplicates BIGINT, quarantined BIGINT);
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
"""


def quiet_utc(con: Any) -> Any:
    """``con`` (a DuckDB connection or an Ibis DuckDB backend) set to UTC and without DuckDB's progress bar.

    DuckDB draws a progress bar on stderr for queries over 2 s; the CLI's stderr is for one-line messages
    and our own progress lines, and the app shows its own status. In Jupyter DuckDB refuses the setting
    without ipywidgets: it is then left on.
    """
    run = con.raw_sql if hasattr(con, "raw_sql") else con.execute
    run("SET TimeZone = 'UTC'")
    with contextlib.suppress(duckdb.Error):
        run("SET enable_progress_bar = false")
    return con


def engine_memory() -> str:
    """The memory limit of an analysis' DuckDB (``$WORKBENCH_DUCKDB_MEMORY``, e.g. ``4GB``; default 1 GiB).

    DuckDB's own default is 80% of the machine's memory: a lake's join of 20M predictions with their feedback
    peaked at 1.7 GB and ``check`` at 2.7 GB on the 20M demo lake. Capped, its hash tables spill to
    :func:`spill_folder` instead (1.0 and 1.3 GB, 6-8% slower). A bad value is a one-line error.
    """
    value = os.environ.get(ENGINE_MEMORY_ENV, "").strip() or ENGINE_MEMORY
    found = _SIZE.fullmatch(value)
    size = float(found.group(1)) * _UNITS[found.group(2).upper()] if found else 0.0
    if not ENGINE_MEMORY_MIN <= size < 2**60:
        raise InputError(f"${ENGINE_MEMORY_ENV} must be a size from 64MB up, such as 1GiB or 4GB, not '{value[:40]}'")
    return value


def database_message(error: Exception) -> str:
    """A DuckDB error as one line; running out of an analysis' memory says which setting to raise.

    Hash tables and sorts spill beyond :func:`engine_memory`, but an exact quantile (a holistic aggregate) cannot:
    at ~24 bytes a value, 1 GiB holds about 40M values of one column.
    """
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, duckdb.OutOfMemoryException):
        return (f"{first} (an analysis' DuckDB may use {engine_memory_or_default()}: "
                f"set ${ENGINE_MEMORY_ENV} higher, e.g. 4GB)")  # fmt: skip
    return first


def engine_memory_or_default() -> str:
    """:func:`engine_memory`, or the default when the setting is bad (for a message about another error)."""
    try:
        return engine_memory()
    except InputError:
        return ENGINE_MEMORY


def literal(text: str) -> str:
    """Quote a string literal for DuckDB SQL."""
    return "'" + text.replace("'", "''") + "'"


def spill_folder() -> Path:
    """This process's folder for DuckDB's spilled buffers: ``workbench-duckdb-<uid>/<pid>`` in the temp directory
    (``$TMPDIR``). DuckDB makes the last level and removes it when the database closes; one per process, because
    it removes the whole folder and a read-only store may be open in several processes at once."""
    return Path(tempfile.gettempdir()) / f"workbench-duckdb-{os.getuid()}" / str(os.getpid())


def bounded(con: Any) -> Any:
    """``con`` (a DuckDB connection or an Ibis DuckDB backend) with an analysis' memory limit
    (:func:`engine_memory`) and its spill folder (:func:`spill_folder`), so a query's memory does not grow with the
    rows beyond the limit. Without a private folder (it cannot be made) nothing spills and the limit stays DuckDB's.
    The folder is set once per database: DuckDB refuses to move it after a spill, even to the same path."""
    raw = getattr(con, "con", con)
    limit, folder = engine_memory(), spill_folder()
    try:
        folder.parent.mkdir(mode=0o700, exist_ok=True)
        private = folder.parent.stat().st_uid == os.getuid() and not folder.parent.is_symlink()
    except OSError:
        private = False
    current = raw.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
    if not private:
        if current != "":
            raw.execute("SET temp_directory = ''")  # nowhere to spill (not the working directory's .tmp)
        return con
    if current != str(folder):
        try:
            raw.execute(f"SET temp_directory = {literal(str(folder))}")
        except duckdb.NotImplementedException:  # another thread's connection set it and spilled in between
            if raw.execute("SELECT current_setting('temp_directory')").fetchall()[0][0] != str(folder):
                raise
    raw.execute(f"SET memory_limit = '{limit.strip()}'")
    return con


def default_db_path() -> Path:
    """Return ``$WORKBENCH_DB`` when set, else ``data/workbench.duckdb``."""
    return Path(os.environ.get("WORKBENCH_DB") or DEFAULT_DB)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


class Store:
    """A DuckDB file holding predictions, feedback, quarantine, ingests and metadata."""

    def __init__(self, path: str | Path | None = None, lock_timeout_s: float = LOCK_TIMEOUT_S):
        self.path = Path(path) if path is not None else default_db_path()
        self.lock_timeout_s = lock_timeout_s
        self.read_only = read_only()  # $WORKBENCH_READ_ONLY: every write is refused with ReadOnlyError

    def exists(self) -> bool:
        """True when the store file is there."""
        return self.path.is_file()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if not _is_lock_error(exc):
                    raise InputError(f"cannot open store {self.path}: {exc}") from None
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"store {self.path} is locked by another process (a running ingest, "
                        f"demo or simulate?); tried for {self.lock_timeout_s:.0f} s"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            except duckdb.Error as exc:
                raise InputError(f"cannot open store {self.path}: {exc}") from None
        return bounded(quiet_utc(con)) if read_only else quiet_utc(con)

    @contextmanager
    def connect(self, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a short-lived connection; a writable one creates the file and its tables."""
        if read_only and not self.exists():
            raise InputError(f"no store at {self.path}: run `workbench demo` or `workbench ingest FILE` first")
        if not read_only and self.read_only:
            raise ReadOnlyError(f"the workbench runs read-only (${READ_ONLY_ENV}): {self.path} is not written")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._open(read_only)
        try:
            if not read_only:
                con.execute(STORE_DDL)
            yield con
        finally:
            con.close()

    @contextmanager
    def ibis(self) -> Iterator[Any]:
        """Yield an Ibis DuckDB backend over a short-lived read-only connection."""
        import ibis

        with self.connect(read_only=True) as con:
            yield ibis.duckdb.from_connection(con)


def read_meta(con: duckdb.DuckDBPyConnection, key: str) -> Any:
    """Return the JSON value stored under ``key`` in ``meta``, or None."""
    rows = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()  # fetchall: leave no open result
    return json.loads(rows[0][0]) if rows else None


def write_meta(con: duckdb.DuckDBPyConnection, key: str, value: Any) -> None:
    """Store ``value`` (JSON-serialisable) under ``key``, replacing what was there."""
    con.execute("DELETE FROM meta WHERE key = ?", [key])
    con.execute("INSERT INTO meta VALUES (?, ?)", [key, json.dumps(value, sort_keys=True)])


def stored_roles(con: duckdb.DuckDBPyConnection) -> Roles:
    """Return the roles recorded with the data: features, categorical and sensitive columns."""
    raw = read_meta(con, "roles")
    return Roles() if raw is None else Roles.from_dict(raw)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Return ``{column: duckdb type}`` of a store table, in table order."""
    rows = con.execute(  # duckdb_columns(): information_schema's view over it cost ~5–35 ms a call
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE table_name = ? AND schema_name = 'main' AND database_name = current_database() ORDER BY column_index",
        [table],
    ).fetchall()
    return dict(rows)
