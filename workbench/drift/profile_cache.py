"""The reference profiles' cache in the store (``drift_profiles``): keys, packing and one short write.

A profile is keyed by its definition and the reference window's row count and newest ingest id, so new
data in the window makes a new profile; its grid arrays are stored as the base64 of their bytes and the
domain classifier's reference sample as Arrow IPC (exact values, no code).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import numpy as np

from workbench.core.errors import StoreUnwritableError

PROFILE_VERSION = 3  # 2: grid arrays as base64 of their bytes (see _pack); 3: moments from pulled values, NaN out

_DDL = "CREATE TABLE IF NOT EXISTS drift_profiles (key VARCHAR, created_at TIMESTAMPTZ, profile VARCHAR)"


def profile_key(parts: dict[str, Any]) -> str:
    """A stable key for a reference profile: SHA-256 of its definition and the reference's row/ingest counts."""
    text = json.dumps({"version": PROFILE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def reference_fingerprint(table: Any) -> dict[str, Any]:
    """Rows and the newest ingest id of a store window: a profile is stale when either changes."""
    row = table.aggregate(rows=table.count(), last_ingest=table.ingest_id.max()).to_pyarrow().to_pylist()[0]
    last = row["last_ingest"]  # None for an empty window (max of no rows)
    return {"rows": int(row["rows"] or 0), "last_ingest": None if last is None or last != last else int(last)}


def load_profile(con: Any, key: str) -> dict[str, Any] | None:
    """The cached profile under ``key`` (from an open read-only DuckDB connection), or None."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'drift_profiles'"
    ).fetchall()  # fetchall: leave no open result on the connection
    if not exists[0][0]:
        return None
    rows = con.execute("SELECT profile FROM drift_profiles WHERE key = ?", [key]).fetchall()
    return _unpack(json.loads(rows[0][0])) if rows else None


_PACKED = {"grid_index": "<i8", "grid_counts": "<f8", "grid_sums": "<f8"}


def _pack(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile with each numeric feature's grid arrays as ``{"dtype", "b64"}`` (their little-endian bytes).

    21 features × up to 10,000 grid bins as JSON numbers made a 5 MB text whose parsing cost 0.15 s of a
    new window's run; the bytes are exact (no decimal round trip) and decode in milliseconds.
    """
    numeric = {}
    for f, entry in profile.get("numeric", {}).items():
        packed = dict(entry)
        for key, dtype in _PACKED.items():
            if key in entry:
                data = np.ascontiguousarray(entry[key], dtype=dtype).tobytes()
                packed[key] = {"dtype": dtype, "b64": base64.b64encode(data).decode("ascii")}
        numeric[f] = packed
    return {**profile, "numeric": numeric}


def _unpack(profile: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`_pack`: the grid arrays as numpy arrays (lists are left as they are)."""
    for entry in profile.get("numeric", {}).values():
        for key in _PACKED:
            value = entry.get(key)
            if isinstance(value, dict):
                entry[key] = np.frombuffer(base64.b64decode(value["b64"]), dtype=value["dtype"])
    return profile


def save_profile(store: Any, key: str, profile: dict[str, Any], keep: int = 40) -> bool:
    """Write the profile in one short transaction (keeping the newest ``keep``: a drift run keeps two, its reference
    profile and its reconstruction's reference part); False when the store is busy."""
    try:
        with store.connect(read_only=False) as con:
            con.execute("BEGIN")
            con.execute(_DDL)
            con.execute("DELETE FROM drift_profiles WHERE key = ?", [key])
            con.execute("INSERT INTO drift_profiles VALUES (?, now(), ?)", [key, json.dumps(_pack(profile))])
            con.execute(
                "DELETE FROM drift_profiles WHERE key NOT IN "
                "(SELECT key FROM drift_profiles ORDER BY created_at DESC LIMIT ?)",
                [keep],
            )
            con.execute("COMMIT")
        return True
    except StoreUnwritableError:  # a cache: being unable to write it (busy, read-only) must not fail the analysis
        return False


def pack_frame(frame: Any) -> str:
    """A small data frame (a sample) as base64 of its Arrow IPC bytes: exact values, no code in it."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def unpack_frame(text: str) -> Any:
    """Inverse of :func:`pack_frame` (pandas)."""
    import pyarrow as pa

    return pa.ipc.open_stream(base64.b64decode(text)).read_all().to_pandas()
