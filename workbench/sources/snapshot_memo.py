"""Small results kept per snapshot of a read-only source: what a lake folder has instead of the ingest's kept counts.

A store's ingest keeps per-trace counts as it writes (:mod:`workbench.sources.trace_feedback`), so the store
summary reads coverage with one scan. A lake is never written: each ``workbench info`` joined 21.7M feedback rows
with 20M predictions (10.9 s of a 14.2 s ``info`` at 20M rows, loaded machine). The source says which snapshot a
connection reads (``meta`` key ``snapshot``: a digest of its files, its rules and the UTC day, written by
:class:`workbench.ingest.lake.LakeStore`); a result computed on it is kept as a small JSON file in the data
folder's cache (``.lake-cache/``, beside the lake's left-out rows) under that digest, and the next process on
the same snapshot on the same engine (DuckDB, or Spark, whose catalog names the snapshot alike) reads it. A new or
changed file makes a new digest; a source without one (a store) computes every time.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from workbench.core.paths import read_only
from workbench.sources.store import default_db_path, read_meta

CACHE_FOLDER = ".lake-cache"  # beside the default store (the data folder): a lake's per-snapshot results
CACHE_FILES = 64  # the newest of each kind kept; older snapshots' files are removed
SNAPSHOT_KEY = "snapshot"  # the meta key naming the snapshot a connection reads


def cache_folder() -> Path:
    """The folder of the per-snapshot cache files (``.lake-cache/`` in the default store's folder)."""
    return default_db_path().parent / CACHE_FOLDER


def snapshot_of(con: Any) -> str | None:
    """The snapshot digest an Ibis backend reads (a lake on DuckDB: an in-memory database of views; on Spark,
    the same lake's in-memory DuckDB catalog, its ``con``), or None (a store, a file whose ``meta`` is not ours
    to trust for this, or another engine)."""
    if getattr(con, "name", None) not in ("duckdb", "pyspark"):
        return None
    try:
        if con.con.execute("SELECT current_database()").fetchall()[0][0] != "memory":
            return None
        value = read_meta(con.con, SNAPSHOT_KEY)
    except duckdb.Error:  # a connection without the meta table: no snapshot
        return None
    return value if isinstance(value, str) else None


def remembered(con: Any, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()`` (a JSON-ready dict) for the snapshot ``con`` reads: from the cache when it holds it, else
    computed and kept there. Without a snapshot: computed. A cache: a file that cannot be read or written is
    computed again, and a read-only workbench writes nothing."""
    snapshot = snapshot_of(con)
    if snapshot is None:
        return compute()
    # each engine keeps its own: the two compute a lake's numbers independently (and the tests compare them)
    engine = "" if con.name == "duckdb" else f"\0{con.name}"
    digest = hashlib.sha256(f"{name}\0{snapshot}{engine}".encode()).hexdigest()[:24]
    path = cache_folder() / f"{name}-{digest}.json"
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(found, dict) and found.get("snapshot") == snapshot:
            return found["value"]
    except (OSError, ValueError, KeyError):
        pass
    value = compute()
    keep(path, json.dumps({"snapshot": snapshot, "value": value}, sort_keys=True).encode())
    return value


def keep(path: Path, data: bytes) -> None:
    """Write a cache file atomically and keep the newest :data:`CACHE_FILES` of its suffix in its folder; any
    failure, and a read-only workbench, skip it (a cache)."""
    if read_only():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / ".gitignore").write_text("*\n", encoding="utf-8")  # a cache, never committed
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, path)
        old = sorted(path.parent.glob(f"*{path.suffix}"), key=lambda f: f.stat().st_mtime_ns, reverse=True)
        for stale in old[CACHE_FILES:]:
            stale.unlink(missing_ok=True)
    except OSError:
        return
