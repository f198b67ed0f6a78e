"""One store, several processes: short connections, a brief retry on a lock, then a clear message."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import GOOD, ROOT, counts, write
from workbench.core.errors import InputError, StoreBusyError
from workbench.ingest.pipeline import ingest_file
from workbench.sources.store import Store, default_db_path


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
