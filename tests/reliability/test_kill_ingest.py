"""A ``kill -9`` at any moment of a 200k-row ingest leaves the store as it was (every table's count and content),
and the same file then ingests whole: nothing lost, nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import GOOD, PREDICTIONS_HEADER, ROOT, counts, write
from workbench.ingest.pipeline import ingest_file
from workbench.sources.store import Store

ROWS = 200_000
FINGERPRINT = "SELECT count(*), sum(hash(trace_id)), sum(hash(ts)), sum(score) FROM predictions"


def big_file(folder: Path) -> Path:
    """ROWS valid predictions, written line by line (the file is ~11 MB)."""
    path = folder / "big.csv"
    countries = ("DE", "FR", "IT")
    with path.open("w", encoding="utf-8") as out:
        out.write(PREDICTIONS_HEADER + "\n")
        for i in range(ROWS):
            out.write(f"k{i},2026-01-05 10:{i % 60:02d}:00,v{i % 3},{i % 2},{(i % 100) / 100},{i % 977}.5,")
            out.write(f"{countries[i % 3]},18-25\n")
    return path


def state(store: Store) -> tuple:
    """Every table's count and a fingerprint of the predictions' contents."""
    with store.connect(read_only=True) as con:
        return counts(store), con.execute(FINGERPRINT).fetchone()


def kill_ingest(store: Store, path: Path, folder: Path, after_s: float | None) -> None:
    """Start ``ingest_file`` in another process and SIGKILL it ``after_s`` seconds into the ingest, or (None) right
    after its insert, before the commit (the ingest's own hook)."""
    started, inserted = folder / "started", folder / "inserted"
    for marker in (started, inserted):
        marker.unlink(missing_ok=True)
    script = (
        "import pathlib, time\n"
        "from workbench.ingest import pipeline as ingest\n"
        "from workbench.sources.store import Store\n"
        f"ingest._after_insert_hook = lambda: (pathlib.Path({str(inserted)!r}).touch(), time.sleep(60))\n"
        f"pathlib.Path({str(started)!r}).touch()\n"
        f"ingest.ingest_file(Store({str(store.path)!r}), {str(path)!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    marker = inserted if after_s is None else started
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, "the ingest process ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(after_s or 0)
    assert proc.poll() is None, f"the ingest finished within {after_s} s: kill earlier"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_kill_9_at_any_moment_of_a_large_ingest_leaves_the_store_as_it_was(tmp_path):
    store = Store(tmp_path / "store.duckdb")
    ingest_file(store, write(tmp_path / "seed.csv", GOOD))
    before = state(store)
    path = big_file(tmp_path)
    for after_s in (0.0, 0.4, 1.2, None):  # reading, validating, appending, and after the insert before the commit
        kill_ingest(store, path, tmp_path, after_s)
        assert state(store) == before, f"killed {after_s} s in"
    result = ingest_file(store, path)  # the store opens and takes the whole file afterwards
    assert (result.accepted, result.quarantined, result.duplicates) == (ROWS, 0, 0)
    assert counts(store)["predictions"] == before[0]["predictions"] + ROWS
