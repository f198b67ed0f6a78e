"""One store, several processes: short connections, a brief retry on a lock, then a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import duckdb
import pytest

from tests.conftest import GOOD, ROOT, counts, write
from workbench.core.errors import InputError, StoreBusyError
from workbench.ingest.pipeline import ingest_file
from workbench.sources.store import (
    ENGINE_MEMORY_ENV,
    Store,
    bounded,
    database_message,
    default_db_path,
    engine_memory,
    spill_folder,
)


def _hold_write_lock(store: Store, seconds: float, ready) -> subprocess.Popen:
    script = (
        "import duckdb, time, pathlib\n"
        f"con = duckdb.connect({str(store.path)!r})\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        f"time.sleep({seconds})\n"
        "con.close()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    return proc


def test_a_locked_store_gives_a_one_line_busy_error(tmp_path):
    store = Store(tmp_path / "s.duckdb", lock_timeout_s=0.5)
    ingest_file(store, write(tmp_path / "p.csv", GOOD))
    holder = _hold_write_lock(store, 5, tmp_path / "ready")
    try:
        with pytest.raises(StoreBusyError, match="locked by another process"), store.connect():
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_reader_waits_for_a_short_write_to_finish(tmp_path):
    store = Store(tmp_path / "s.duckdb", lock_timeout_s=20)
    ingest_file(store, write(tmp_path / "p.csv", GOOD))
    holder = _hold_write_lock(store, 1.5, tmp_path / "ready")
    started = time.monotonic()
    assert counts(store)["predictions"] == 3
    assert time.monotonic() - started > 0.5  # it did wait for the lock
    holder.wait()


def test_two_processes_ingesting_at_once_both_land(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    ingest_file(store, write(tmp_path / "seed.csv", GOOD))
    files = []
    for k in range(2):
        lines = ["trace_id,ts,model_version,prediction"] + [f"w{k}-{i},2026-01-02,v1,1" for i in range(2000)]
        files.append(write(tmp_path / f"w{k}.csv", "\n".join(lines)))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "ingest", str(f), "--db", str(store.path), "--json"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for f in files
    ]
    outcomes = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outcomes]
    assert counts(store)["predictions"] == 3 + 4000


def test_reading_a_missing_store_says_how_to_create_one(tmp_path):
    with pytest.raises(InputError, match="run `workbench demo`"), Store(tmp_path / "none.duckdb").connect():
        pass


def test_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "x.duckdb"))
    assert default_db_path() == tmp_path / "x.duckdb"
    monkeypatch.delenv("WORKBENCH_DB")
    assert str(default_db_path()) == "data/workbench.duckdb"


def test_connections_draw_no_progress_bar_on_stderr(tmp_path):
    """DuckDB's progress bar would interleave with the CLI's one-line messages."""
    store = Store(tmp_path / "w.duckdb")
    for read_only in (False, True):
        with store.connect(read_only=read_only) as con:
            assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)


def test_in_memory_file_connections_are_utc_and_draw_no_progress_bar(tmp_path):
    """File modes (drift, fairness) read through an in-memory DuckDB: same settings as the store's."""
    from workbench.sources.files import file_table

    path = tmp_path / "rows.csv"
    path.write_text("x\n1\n2\n")
    with file_table(path) as table:
        settings = table._find_backend().raw_sql(
            "SELECT current_setting('enable_progress_bar'), current_setting('TimeZone')"
        )
        assert settings.fetchall() == [(False, "UTC")]


SPILLING = (
    "SELECT count(*) FROM (SELECT k, count(*) FROM "
    "(SELECT (range * 7919 % 3000000)::VARCHAR AS k FROM range(3000000)) GROUP BY k)"
)


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """A temp directory of this test's own (``$TMPDIR``), so the spill folder is found and checked there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches its first answer
    return folder


def test_an_analysis_caps_duckdb_memory_and_spills_to_a_folder_of_its_own(tmp_path, own_tmp, monkeypatch):
    """A read-only store connection holds DuckDB to $WORKBENCH_DUCKDB_MEMORY: a GROUP BY of 3M distinct strings
    over 64 MB spills to this process's folder and gives the exact count; without a folder to spill to the same
    limit fails it (so the cap is in force). Writes keep DuckDB's own limit (an ingest is not capped)."""
    monkeypatch.setenv(ENGINE_MEMORY_ENV, "64MB")
    store = Store(tmp_path / "s.duckdb")
    with store.connect(read_only=False) as con:
        default = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    folder = spill_folder()
    assert folder == own_tmp / f"workbench-duckdb-{os.getuid()}" / str(os.getpid())
    with store.connect() as con:
        limit, spill = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
        assert (limit, spill) == ("61.0 MiB", str(folder)) and limit != default
        assert con.execute(SPILLING).fetchone() == (3_000_000,)
        assert bounded(con) is con  # a second call on a database that spilled leaves its folder as it is
    assert not folder.exists()  # DuckDB removed it with the database
    with duckdb.connect() as raw:
        raw.execute("SET memory_limit = '64MB'")
        raw.execute("SET temp_directory = ''")
        with pytest.raises(duckdb.OutOfMemoryException):
            raw.execute(SPILLING)


def test_lake_and_file_connections_are_capped_too(tmp_path, own_tmp, monkeypatch):
    from workbench.ingest.lake import LakeStore
    from workbench.sources.files import file_table

    monkeypatch.setenv(ENGINE_MEMORY_ENV, "300MB")
    path = tmp_path / "rows.csv"
    path.write_text("x\n1\n2\n")
    with file_table(path) as table:
        settings = table._find_backend().raw_sql(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        )
        assert settings.fetchall() == [("286.1 MiB", str(spill_folder()))]
    lake = tmp_path / "lake" / "predictions"
    lake.mkdir(parents=True)
    duckdb.sql(
        "COPY (SELECT 't' || range AS trace_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS ts, 'v1' AS model_version,"
        f" 1::TINYINT AS prediction, 0.5 AS score FROM range(3)) TO '{lake / 'a.parquet'}' (FORMAT parquet)"
    )
    with LakeStore(tmp_path / "lake").connect() as con:
        assert con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone() == (
            "286.1 MiB",
            str(spill_folder()),
        )


def test_no_private_spill_folder_means_no_cap_and_no_spill(tmp_path, own_tmp, monkeypatch):
    """A spill folder's parent that is a link (another user's trap in a shared /tmp) is not written into: DuckDB
    keeps its own limit and spills nowhere (not into the working directory's .tmp either)."""
    monkeypatch.setenv(ENGINE_MEMORY_ENV, "64MB")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    spill_folder().parent.symlink_to(elsewhere)
    with duckdb.connect() as con:
        default = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        bounded(con)
        assert con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone() == (
            default,
            "",
        )


@pytest.mark.parametrize("value", ["lots", "1GB; DROP TABLE x", "-5MB", "1B", "0MB", "63MB", "99999999TB", ""])
def test_the_engine_memory_setting_is_a_size_or_a_one_line_error(monkeypatch, value):
    monkeypatch.setenv(ENGINE_MEMORY_ENV, value)
    if not value:  # unset or empty: the default
        assert engine_memory() == "1GiB"
        return
    with pytest.raises(InputError, match=r"\$WORKBENCH_DUCKDB_MEMORY must be a size from 64MB up, such as 1GiB"):
        engine_memory()
    monkeypatch.setenv(ENGINE_MEMORY_ENV, " 2.5 gb ")
    assert engine_memory() == "2.5 gb"


def test_an_exact_quantile_beyond_the_cap_says_which_setting_to_raise(tmp_path, own_tmp, monkeypatch):
    """A holistic aggregate (an exact quantile) cannot spill: beyond the cap DuckDB runs out of memory, and the
    one-line message (CLI, pages, a drift section) names $WORKBENCH_DUCKDB_MEMORY and its value."""
    monkeypatch.setenv(ENGINE_MEMORY_ENV, "64MB")
    store = Store(tmp_path / "q.duckdb")
    with store.connect(read_only=False):
        pass
    with store.connect() as con, pytest.raises(duckdb.OutOfMemoryException) as caught:
        con.execute("SELECT quantile_cont(random(), 0.5) FROM range(5000000)").fetchall()
    message = database_message(caught.value)
    assert message.startswith("Out of Memory Error") and len(message.splitlines()) == 1
    assert message.endswith("(an analysis' DuckDB may use 64MB: set $WORKBENCH_DUCKDB_MEMORY higher, e.g. 4GB)")
    assert database_message(duckdb.CatalogException("Catalog Error: no table x\nLINE 1")) == "Catalog Error: no table x"
