"""The latest verdict of each analysis (drift, A/B, fairness, triggers), kept in the store.

An analysis run from the CLI or a page records a small summary here; the retrain gate reads the
latest one per family as its evidence and shows "not run" for a family with none.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import duckdb

from workbench.core.result import FAMILIES, Result
from workbench.sources.store import Store

_DDL = """
CREATE TABLE IF NOT EXISTS analysis_runs (
    run_id BIGINT, family VARCHAR, created_at TIMESTAMPTZ, verdict VARCHAR, summary VARCHAR)
"""


@dataclass(frozen=True)
class AnalysisRun:
    """One recorded analysis: its family, when, its verdict word and a JSON-ready summary."""

    family: str
    created_at: str
    verdict: str
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def record_run(store: Store, family: str, verdict: str, summary: dict[str, Any]) -> None:
    """Append an analysis run (one short write transaction)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown analysis family {family!r}")
    with store.connect(read_only=False) as con:
        con.execute(_DDL)
        con.execute(
            "INSERT INTO analysis_runs SELECT coalesce(max(run_id), 0) + 1, ?, now(), ?, ? FROM analysis_runs",
            [family, verdict, json.dumps(summary, sort_keys=True, default=str)],
        )


def record_once(store: Store, result: Result, seen: set[str], context: tuple[Any, ...] = ()) -> bool:
    """Record ``result.evidence()`` for the retrain gate unless this store, context and verdict are in ``seen``.

    ``seen`` is the caller's memory (a page's session state): a page shown again, or a live refresh that
    changes nothing, records once; a new verdict or context records again (a caller whose sentence should
    record again when it changes, e.g. new counts, puts ``result.verdict_text`` in ``context``; the stream's
    quiet sentence names the time, so its context is the rules, window and fired rules instead).
    Returns True when it recorded.
    """
    key = repr((str(store.path), result.family, *context, result.verdict))
    if key in seen or store.read_only:  # read-only: the gate's evidence is not recorded, the page says so
        return False
    record_run(store, result.family, result.verdict, result.evidence())
    seen.add(key)
    return True


def latest_runs_from(con: duckdb.DuckDBPyConnection) -> dict[str, AnalysisRun | None]:
    """The latest run per family over an open connection (None where a family never ran)."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'analysis_runs'")
    latest: dict[str, AnalysisRun | None] = dict.fromkeys(FAMILIES)
    if not exists.fetchone()[0]:
        return latest
    rows = con.execute(
        "SELECT family, strftime(created_at, '%Y-%m-%dT%H:%M:%SZ'), verdict, summary FROM analysis_runs "
        "QUALIFY row_number() OVER (PARTITION BY family ORDER BY run_id DESC) = 1"
    ).fetchall()
    for family, created_at, verdict, summary in rows:
        latest[family] = AnalysisRun(family, created_at, verdict, json.loads(summary))
    return latest


def latest_runs(store: Store) -> dict[str, AnalysisRun | None]:
    """The latest run per family (None where a family never ran)."""
    with store.connect(read_only=True) as con:
        return latest_runs_from(con)
