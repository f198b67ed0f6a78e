"""Foundation: building the demo store and validated ingestion, beside a plain unvalidated DuckDB load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from benchmarks.harness import Row, measure

TITLE = "Foundation: demo generation and validated ingestion"


def build_demo(db: str, rows: int) -> int:
    """Our path: `workbench demo --rows N` (generate, validate, ingest in 1M-row chunks)."""
    from workbench.demo.scenario import Scenario, build_demo
    from workbench.sources.store import Store

    return build_demo(Store(db), Scenario(rows=rows))["predictions"]


def export_parquet(db: str, out: str) -> None:
    """Write the demo's predictions to a Parquet file (the input of the ingest benchmark)."""
    import duckdb

    con = duckdb.connect(db, read_only=True)  # the store's own columns stay behind (ingest id, the kept sums)
    columns = "COLUMNS(lambda c: c <> 'ingest_id' AND NOT starts_with(c, '__fb_'))"
    con.execute(f"COPY (SELECT {columns} FROM predictions) TO '{out}' (FORMAT parquet)")
    con.close()


def export_late_feedback(db: str, out: str, rows: int) -> None:
    """``rows`` new feedback events for traces already in the store (its feedback a second later): a late batch."""
    import duckdb

    con = duckdb.connect(db, read_only=True)
    con.execute(
        f"COPY (SELECT trace_id, ts + INTERVAL 1 SECOND AS ts, kind, type, value, label FROM feedback "
        f"USING SAMPLE {rows} ROWS (reservoir, 7)) TO '{out}' (FORMAT parquet)"
    )
    con.close()


def ingest(db: str, parquet: str) -> dict:
    """Our path: `workbench ingest FILE` (validate every row, quarantine, dedupe, one transaction)."""
    from workbench.ingest.pipeline import ingest_file
    from workbench.sources.store import Store

    result = ingest_file(Store(db), parquet)
    return {"accepted": result.accepted, "duplicates": result.duplicates}


def plain_load(db: str, path: str, reader: str = "read_parquet") -> int:
    """The alternative: load the file into DuckDB as it is (``reader``: read_parquet or read_csv, types
    inferred), no validation and no dedupe."""
    import duckdb

    con = duckdb.connect(db)
    con.execute(f"CREATE TABLE predictions AS SELECT * FROM {reader}('{path}')")
    n = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    con.close()
    return n


def write_wide_csv(path: str, columns: int, rows: int = 20) -> None:
    """A predictions CSV with ``columns`` numeric feature columns (a hostile-but-valid wide file)."""
    header = "trace_id,ts,model_version,prediction," + ",".join(f"f{i}" for i in range(columns))
    lines = [header] + [f"t{r},2026-01-02,v1,1," + ",".join(str(r * i) for i in range(columns)) for r in range(rows)]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _imports() -> None:
    import duckdb  # noqa: F401
    import pyarrow  # noqa: F401

    import workbench.ingest  # noqa: F401


def cases(quick: bool, workdir: Path) -> Iterator[Row]:
    """Demo build at 1M rows, then ingesting (and re-ingesting) its 1M predictions from Parquet."""
    rows = 20_000 if quick else 1_000_000
    demo_db = str(workdir / "foundation-demo.duckdb")
    built = measure(build_demo, demo_db, rows, setup=_imports)
    yield Row(
        "foundation", "workbench demo", rows, built.seconds, built.peak_mb,
        goal="seconds, not minutes", goal_met=built.seconds < 60,
        notes="generate predictions and ~1.05 feedback rows per prediction, validate and ingest both streams",
    )  # fmt: skip
    parquet = str(workdir / "predictions.parquet")
    export_parquet(demo_db, parquet)
    ingest_db = str(workdir / "foundation-ingest.duckdb")
    ours = measure(ingest, ingest_db, parquet, setup=_imports)
    plain = measure(plain_load, str(workdir / "foundation-plain.duckdb"), parquet, setup=_imports)
    yield Row(
        "foundation", "ingest Parquet (validated)", rows, ours.seconds, ours.peak_mb,
        "DuckDB CREATE TABLE AS read_parquet (no validation)", plain.seconds, plain.peak_mb,
        notes="the ratio below 1 is the price of validation, quarantine and de-duplication",
    )  # fmt: skip
    again = measure(ingest, ingest_db, parquet, setup=_imports)
    assert again.result["accepted"] == 0 and again.result["duplicates"] == rows
    yield Row("foundation", "re-ingest the same file (all duplicates)", rows, again.seconds, again.peak_mb)
    late = str(workdir / "late-feedback.parquet")
    export_late_feedback(demo_db, late, rows // 10)
    added = measure(ingest, demo_db, late, setup=_imports)
    assert added.result["accepted"] == rows // 10, added.result
    yield Row(
        "foundation", "ingest late feedback into the demo store (validated; kept sums updated)", rows // 10,
        added.seconds, added.peak_mb,
        notes=f"{rows // 10:,} new events for traces already in the {rows:,}-prediction store: their per-trace "
        "sums, the copies on their prediction rows and their units' sums are recomputed in the same transaction",
    )  # fmt: skip
    wide = str(workdir / "wide.csv")
    write_wide_csv(wide, 2000)
    ours_wide = measure(ingest, str(workdir / "wide.duckdb"), wide, setup=_imports)
    plain_wide = measure(plain_load, str(workdir / "wide-plain.duckdb"), wide, "read_csv", setup=_imports)
    yield Row(
        "foundation", "ingest a 2,000-column CSV (20 rows)", 20, ours_wide.seconds, ours_wide.peak_mb,
        "DuckDB CREATE TABLE AS read_csv (no validation)", plain_wide.seconds, plain_wide.peak_mb,
        goal="seconds (was 51.6 s)", goal_met=ours_wide.seconds < 15,
        notes="type inference 100 columns per query, one catalog read, one batch of ALTERs, checks over clean columns",
    )  # fmt: skip
