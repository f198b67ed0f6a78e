"""Repeated keys in a lake on Spark: the rows the ingest's repeat rule leaves out are found on DuckDB (once per
snapshot of the files) and anti-joined on Spark by each row's place, Spark 4's ``_metadata.file_path`` (a URI)
and ``row_index``; so Spark leaves out the same rows and gives DuckDB's numbers, whatever the file names hold
(a space, a ``+``, a ``%``: percent-encoded in the URI) and with hive partitions (a partition key read from the
path tells copies in two folders apart, as the ingest does).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ingest.test_lake import write_repeats_lake
from tests.spark.test_spark_engine import compare
from workbench.demo.scenario import Scenario, build_demo
from workbench.ingest.lake import LakeStore, SparkLakeStore, validation_report
from workbench.sources.store import Store
from workbench.sources.store_queries import store_summary

pytestmark = [pytest.mark.xdist_group("spark"), pytest.mark.slow]
pytest.importorskip("pyspark")

# the earlier file, every row, the later file: in three day partitions, with names URIs encode
FILES = ("day=1/a early.parquet", "day=2/part+0.parquet", "day=3/part 1%.parquet")
STORE_REASON, FILE_REASON = (
    "trace_id already in store with other values",
    "duplicate trace_id in file with other values",
)
EXPECTED = {  # by hand: as in tests/ingest/test_lake.py, but a copy in another day's folder differs by its day
    "reasons": {
        "feedback": {STORE_REASON: 300},  # the later file's copies of the first 300 events
        "predictions": {STORE_REASON: 50 + 200 + 100 + 10, FILE_REASON: 30},
    },
    "duplicates": {"predictions": 40 + 10, "feedback": 20},  # copies of the later file's own first rows
}


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LakeStore, SparkLakeStore]]:
    folder = tmp_path_factory.mktemp("spark_repeats")
    store = Store(folder / "w.duckdb")
    build_demo(store, Scenario(rows=4_000, days=30, seed=11))
    with pytest.MonkeyPatch.context() as patch:  # the caches go to this run's data folder
        patch.setenv("WORKBENCH_DB", str(folder / "data" / "workbench.duckdb"))
        lake = write_repeats_lake(store, folder / "lake", FILES)
        yield LakeStore(lake.path), SparkLakeStore(lake.path)


def test_spark_leaves_out_the_rows_duckdb_leaves_out(lakes) -> None:
    duck, spark = (validation_report(lake) for lake in lakes)
    assert duck["reasons"] == EXPECTED["reasons"]
    assert duck["duplicates"] == EXPECTED["duplicates"]
    assert duck["valid"]["predictions"] == 4_000
    assert spark == duck  # Spark's decoded URIs met DuckDB's file names: every left-out row found


def test_spark_keeps_the_coverage_validate_found_for_its_next_summary(lakes, monkeypatch: pytest.MonkeyPatch) -> None:
    """validate on Spark computes the feedback's coverage and keeps it for the snapshot under Spark's name: the
    next summary on Spark reads it (no join); DuckDB computes its own (each engine's numbers stay independent)."""
    import workbench.sources.store_queries as store_queries

    duck, spark = lakes
    cache = Path(os.environ["WORKBENCH_DB"]).parent / ".lake-cache"
    for kept in cache.glob("coverage-*.json"):
        kept.unlink()
    report = validation_report(spark)
    assert len(list(cache.glob("coverage-*.json"))) == 1
    joins: list[str] = []
    original = store_queries.snapshot_memo.remembered
    counted = lambda con, name, compute: original(con, name, lambda: joins.append(name) or compute())  # noqa: E731
    monkeypatch.setattr(store_queries.snapshot_memo, "remembered", counted)
    summary = store_summary(spark)
    assert joins == [] and summary.orphan_feedback == report["feedback"]["orphans"]
    assert store_summary(duck).coverage_any == summary.coverage_any and joins == ["coverage"]
    assert len(list(cache.glob("coverage-*.json"))) == 2


def test_spark_s_summary_of_a_lake_with_repeats_equals_duckdb_s(lakes) -> None:
    """The analyses read the same rows (the A/B and fairness on Spark are compared in test_spark_engine)."""
    summaries = [store_summary(lake).to_dict() for lake in lakes]
    assert summaries[0]["quarantine_by_reason"] == {STORE_REASON: 360 + 300, FILE_REASON: 30}
    assert summaries[0]["predictions"] == 4_000
    found, worst = compare(*summaries)
    assert found == [] and worst <= 1e-9
