"""Apache Spark as an engine (``--engine spark``): on the same lake folder every analysis gives DuckDB's numbers.

Counts, sums and everything derived from them (summary, A/B, fairness, the triggers, chi², missing shares)
agree to 1e-9 relative. Spark's ``percentile`` (what Ibis compiles a quantile to) is exact, with the same
linear interpolation as DuckDB's ``quantile_cont``, so the drift profile's deciles and grid agree to 1e-9 as
well when both engines take the grid KS; DuckDB's exact KS (pulled sorted values, which Spark never ships
back) differs from the grid KS by at most the heaviest grid bin's mass in either window, and the verdict per
feature is the same. One local Spark session serves the module (startup included in the budget); the tests
share one xdist group so one worker starts it.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from workbench.abtest.request import ABTestRequest
from workbench.abtest.run import run as run_abtest
from workbench.core.window import Window
from workbench.demo.scenario import Scenario, build_demo
from workbench.drift.engine import load_settings
from workbench.drift.queries import hashed_sample, sample_rows
from workbench.drift.request import DriftRequest
from workbench.drift.run import run as run_drift
from workbench.fairness.request import FairnessRequest
from workbench.fairness.run import run as run_fairness
from workbench.ingest.lake import LakeStore, SparkLakeStore, export_lake, open_store, validation_report
from workbench.quality.request import QualityRequest
from workbench.quality.run import run as run_quality
from workbench.sources.base import StoreSource
from workbench.sources.hashing import HASH_RANGE
from workbench.sources.store import Store
from workbench.sources.store_queries import store_bounds, store_summary
from workbench.stream.request import CheckRequest
from workbench.stream.snapshot import stream_snapshot
from workbench.stream.triggers import run as run_check

pytestmark = [pytest.mark.xdist_group("spark"), pytest.mark.slow]
pytest.importorskip("pyspark")

REL = 1e-9
ROWS = 20_000
SKIP = {"path", "ingests", "seconds", "source", "db", "evaluated_at", "data_version", "settings", "aggregated_from"}


def compare(ours: Any, theirs: Any, where: str = "$") -> tuple[list[str], float]:
    """(paths where ``theirs`` differs from ``ours``, the largest relative difference of their numbers):
    numbers within ``REL`` relative (1e-12 absolute near zero), everything else exactly; run-specific keys out."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        keys = (ours.keys() | theirs.keys()) - SKIP
        found = [f"{where}.{k}: missing" for k in keys if k not in ours or k not in theirs]
        parts = [compare(ours[k], theirs[k], f"{where}.{k}") for k in keys if k in ours and k in theirs]
        return found + [d for p, _ in parts for d in p], max((r for _, r in parts), default=0.0)
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{where}: {len(ours)} items vs {len(theirs)}"], math.inf
        parts = [compare(a, b, f"{where}[{i}]") for i, (a, b) in enumerate(zip(ours, theirs, strict=True))]
        return [d for p, _ in parts for d in p], max((r for _, r in parts), default=0.0)
    numbers = (int, float)
    if isinstance(ours, numbers) and isinstance(theirs, numbers) and not isinstance(ours, bool | type(None)):
        if isinstance(theirs, bool):
            return ([] if ours == theirs else [f"{where}: {ours!r} vs {theirs!r}"]), 0.0
        rel = 0.0 if ours == theirs else abs(ours - theirs) / max(abs(ours), abs(theirs))
        close = math.isclose(ours, theirs, rel_tol=REL, abs_tol=1e-12)
        return ([] if close else [f"{where}: {ours!r} vs {theirs!r}"]), (0.0 if abs(ours - theirs) <= 1e-12 else rel)
    return ([] if ours == theirs else [f"{where}: {ours!r} vs {theirs!r}"]), 0.0


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> tuple[LakeStore, SparkLakeStore]:
    folder = tmp_path_factory.mktemp("spark_lake")
    store = Store(folder / "w.duckdb")
    build_demo(store, Scenario(rows=ROWS, days=40, seed=3))
    lake = export_lake(store, folder / "lake")
    return LakeStore(lake), SparkLakeStore(lake)


def shape(expr: Any) -> str:
    """What a query hands back: ``aggregate`` (a reduction, a grouped aggregate or distinct values, however
    projected, sorted or joined), ``limit`` (at most n rows) or ``rows`` (rows of a table: a pull)."""
    import ibis.expr.operations as ops
    import ibis.expr.types as ir

    if isinstance(expr, ir.Scalar):
        return "aggregate"
    op = expr.as_table().op() if not isinstance(expr, ops.Node) else expr
    while True:
        if isinstance(op, ops.Aggregate | ops.Distinct):
            return "aggregate"
        if isinstance(op, ops.Limit):
            return "limit"
        if isinstance(op, ops.Union):
            return "aggregate" if {shape(op.left), shape(op.right)} == {"aggregate"} else "rows"
        if isinstance(op, ops.JoinChain):
            parts = [op.first, *(link.table for link in op.rest)]
            return "aggregate" if {shape(part) for part in parts} == {"aggregate"} else "rows"
        if not hasattr(op, "parent"):
            return "rows"
        op = op.parent


@contextmanager
def spark_results() -> Iterator[list[tuple[str, int]]]:
    """(shape, rows) of every result the Spark backend hands back to Python meanwhile."""
    from ibis.backends.pyspark import Backend

    seen: list[tuple[str, int]] = []
    original = Backend.execute

    def execute(self: Any, expr: Any, /, **kwargs: Any) -> Any:
        result = original(self, expr, **kwargs)
        seen.append((shape(expr), len(result) if hasattr(result, "__len__") else 1))
        return result

    Backend.execute = execute
    try:
        yield seen
    finally:
        Backend.execute = original


def both(lakes: tuple[LakeStore, SparkLakeStore], analysis: Any) -> tuple[list[str], float]:
    """(differences, largest relative difference) of ``analysis`` on DuckDB and on Spark; only aggregates
    leave Spark (every query Spark answers is a reduction, a grouped aggregate or distinct values)."""
    duck = analysis(StoreSource(lakes[0])).to_json()
    with spark_results() as seen:
        spark = analysis(StoreSource(lakes[1])).to_json()
    assert seen and {kind for kind, _ in seen} <= {"aggregate"}, seen
    return compare(duck, spark)


def test_the_engine_and_the_source_come_from_the_options(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "predictions").mkdir()
    assert type(open_store(f"lake:{tmp_path}", "spark")) is SparkLakeStore
    monkeypatch.setenv("WORKBENCH_ENGINE", "spark")
    assert type(open_store(f"lake:{tmp_path}")) is SparkLakeStore
    assert type(open_store(f"lake:{tmp_path}", "duckdb")) is LakeStore
    from workbench.core.errors import InputError

    with pytest.raises(InputError, match="the spark engine reads lake folders"):
        open_store(tmp_path / "w.duckdb")
    with pytest.raises(InputError, match="unknown engine 'flink': choose duckdb or spark"):
        open_store(f"lake:{tmp_path}", "flink")


def test_the_local_sessions_heap_is_half_the_memory_at_most_4g_or_the_users_choice(monkeypatch) -> None:
    import os

    from workbench.core.errors import InputError
    from workbench.sources.spark import MEMORY_ENV, driver_memory

    monkeypatch.delenv(MEMORY_ENV, raising=False)
    half = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2 // 2**30
    assert driver_memory() == f"{max(1, min(4, half))}g"
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 3 * 2**18}[name])
    assert driver_memory() == "1g"  # a 3 GiB machine: half is 1.5 GiB, whole GiB down
    monkeypatch.setenv(MEMORY_ENV, "8G")
    assert driver_memory() == "8g"
    monkeypatch.setenv(MEMORY_ENV, "lots")
    with pytest.raises(InputError, match="must look like 4g or 512m, not 'lots'"):
        driver_memory()


def test_the_summary_on_spark_equals_duckdb_s(lakes) -> None:
    duck, spark = (store_summary(lake).to_dict() for lake in lakes)
    assert duck["predictions"] == ROWS
    assert compare(duck, spark)[0] == []


def test_abtest_on_spark_equals_duckdb_s(lakes) -> None:
    found, worst = both(lakes, lambda source: run_abtest(source, ABTestRequest()))
    assert found == []
    assert worst <= REL


def test_fairness_on_spark_equals_duckdb_s(lakes) -> None:
    request = FairnessRequest(sensitive=("region", "age_band"))
    found, worst = both(lakes, lambda source: run_fairness(source, request))
    assert found == []
    assert worst <= REL


def test_triggers_on_spark_equal_duckdb_s(lakes) -> None:
    request = CheckRequest(rules_path=ROOT / "rules.example.toml")
    found, worst = both(lakes, lambda source: run_check(source, request))
    assert found == []
    assert worst <= REL


def test_the_stream_snapshot_on_spark_equals_duckdb_s(lakes) -> None:
    """The Feedback stream page's numbers: arrivals, label delays, accuracy series and totals."""
    duck = stream_snapshot(lakes[0]).to_dict()
    with spark_results() as seen:
        spark = stream_snapshot(lakes[1]).to_dict()
    assert seen and {kind for kind, _ in seen} <= {"aggregate"}, seen
    found, worst = compare(duck, spark)
    assert found == [] and worst <= REL


def test_model_quality_on_spark_equals_duckdb_s(lakes) -> None:
    """The calibration folds are a hash both engines compute alike (MD5), so the out-of-sample ECEs, the chosen
    calibration and every metric, estimate and band built on it agree to 1e-9 (Spark's own hash moved the
    isotonic ECE from 0.0075 to 0.0094)."""
    found, worst = both(lakes, lambda source: run_quality(source, QualityRequest(window="all")))
    assert found == []
    assert worst <= REL
    report = run_quality(StoreSource(lakes[0]), QualityRequest(window="all"))
    assert report.calibration["folds"] == 10 and report.calibration["method"] in ("isotonic", "none")


def _drift_request(lake: LakeStore) -> DriftRequest:
    first, last = store_bounds(lake)
    middle = first + (last - first) / 2
    return DriftRequest(Window(end=middle), Window(start=middle), multivariate=False)


def test_drift_on_spark_equals_duckdb_s_grid_ks(lakes) -> None:
    """Both on the grid KS (DuckDB told not to pull values): quantiles, bins, statistics to 1e-9."""
    request, grid = _drift_request(lakes[0]), replace(load_settings(), ks_exact_max_rows=0)
    found, worst = both(lakes, lambda source: run_drift(source, request, grid))
    assert found == []
    assert worst <= REL


def test_drift_on_spark_has_duckdb_s_verdicts_beside_the_exact_ks(lakes) -> None:
    """DuckDB's exact KS (pulled values) vs Spark's grid KS: the same verdicts, the KS within its bound."""
    request = _drift_request(lakes[0])
    duck, spark = (run_drift(StoreSource(lake), request).to_json() for lake in lakes)
    assert duck["verdict"] == spark["verdict"]
    ours, theirs = ({f["name"]: f for f in doc["features"]} for doc in (duck, spark))
    assert ours.keys() == theirs.keys() and len(ours) >= 10
    for name, feature in ours.items():
        other = theirs[name]
        assert (feature["drift"], feature["decided_by"]) == (other["drift"], other["decided_by"]), name
        if feature["ks_statistic"] is not None:  # numeric: the exact KS vs the grid's, within the grid's bound
            assert (feature["ks_method"], other["ks_method"]) == ("exact", "grid"), name
            assert abs(feature["ks_statistic"] - other["ks_statistic"]) <= other["ks_max_error"] + 1e-12, name


def test_rows_that_break_a_rule_are_counted_alike_on_both_engines(tmp_path: Path) -> None:
    import duckdb

    folder = tmp_path / "lake"
    (folder / "predictions").mkdir(parents=True)
    rows = [("a", "2026-01-02", "v1", 1, 0.5), ("b", "2026-01-02", "v1", 7, 0.5), ("c", "epoch", "v1", 1, 0.5),
            ("d", "2026-01-03", "v1", 0, 1.5), ("e", "2026-01-03 10:00:00+15:00", "v2", 0, 0.25),
            (" ", "2026-01-03", "v2", 0, 0.25), ("g", "2026-01-04", "v2", 1, 0.75),
            ("a", "2026-01-02", "v1", 1, 0.5), ("g", "2026-01-04", "v2", 0, 0.75)]  # fmt: skip
    # the last two: a copy of a, and g again with another prediction
    values = ", ".join(f"('{t}', '{ts}', '{v}', {p}, {s})" for t, ts, v, p, s in rows)
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM (VALUES {values}) AS t(trace_id, ts, model_version, prediction, score)) "
                    f"TO '{folder / 'predictions' / 'part.parquet'}' (FORMAT parquet)")  # fmt: skip
    duck, spark = validation_report(LakeStore(folder)), validation_report(SparkLakeStore(folder))
    # the ingest's repeat rule on the four rows that pass: a's copy counts once, g's second row is quarantined
    assert duck["valid"] == {"predictions": 2, "feedback": 0}
    assert duck["duplicates"] == {"predictions": 1, "feedback": 0}
    assert duck["reasons"]["predictions"] == {
        "missing trace_id": 1, "prediction is not 0 or 1": 1, "score is outside [0, 1]": 1,
        "ts has a UTC offset beyond ±14:00": 1, "ts is not a timestamp": 1,
        "duplicate trace_id in file with other values": 1,
    }  # fmt: skip
    assert spark == duck


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server from the pyspark package on 127.0.0.1 (a free port); stopped after the tests."""
    import pyspark

    home = Path(pyspark.__file__).parent
    port = _free_port()
    log = tmp_path_factory.mktemp("connect") / "server.log"
    command = [str(home / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
               "--master", "local[2]", "--conf", f"spark.connect.grpc.binding.port={port}",
               "--conf", "spark.connect.grpc.binding.address=127.0.0.1", "--conf", "spark.ui.enabled=false",
               "--conf", "spark.sql.shuffle.partitions=4", "spark-internal"]  # fmt: skip
    with log.open("wb") as out:
        env = {**os.environ, "SPARK_HOME": str(home)}
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and server.poll() is None:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(1)
        else:
            pytest.fail(f"the Spark Connect server did not start: {log.read_text(errors='replace')[-2000:]}")
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def test_spark_connect_gives_duckdb_s_numbers(lakes, connect_server: str) -> None:
    """The CLI against the Connect server, in a process of its own (pyspark allows a Connect session only in a
    process without a local one): its A/B document equals DuckDB's, on stdout, with nothing but JSON there."""
    import json
    import sys

    duck = run_abtest(StoreSource(lakes[0]), ABTestRequest()).to_json()
    command = [sys.executable, "-m", "workbench.cli", "--source", f"lake:{lakes[1].path}", "--engine", "spark",
               "abtest", "--json"]  # fmt: skip
    env = {**os.environ, "WORKBENCH_SPARK_REMOTE": connect_server}
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    found, worst = compare(duck, json.loads(out.stdout))
    assert found == [] and worst <= REL


def test_the_cli_on_local_spark_prints_nothing_on_stderr(lakes, tmp_path: Path) -> None:
    """A local JVM's start (its incubator-module warning, Spark's log-level banner) goes to the JVM's log, not to
    the CLI's stderr, which is for one-line messages; stdout holds the JSON document alone."""
    import json
    import sys

    from workbench.sources.spark import jvm_log

    command = [sys.executable, "-m", "workbench.cli", "--source", f"lake:{lakes[1].path}", "--engine", "spark",
               "info", "--json"]  # fmt: skip
    env = {**os.environ, "WORKBENCH_DB": str(tmp_path / "x.duckdb"), "TMPDIR": str(tmp_path)}  # its own log
    env.pop("WORKBENCH_SPARK_REMOTE", None)
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr == ""
    assert json.loads(out.stdout)["predictions"] > 0
    log = tmp_path / jvm_log().name  # where the JVM's start went (the same name under the child's temp dir)
    assert log.stat().st_size > 0


def test_a_pull_is_told_from_an_aggregate() -> None:
    import ibis

    t = ibis.table({"score": "float64", "region": "string"}, name="predictions")
    counts = t.group_by("region").aggregate(n=t.count())
    assert [shape(e) for e in (t.count(), counts.order_by("n"), t.select("region").distinct(), t.limit(5))] == [
        "aggregate", "aggregate", "aggregate", "limit"]  # fmt: skip
    assert shape(t.select("score")) == shape(t.filter(t.score > 0.5).order_by("score")) == "rows"
    per_row = t.select("region", n=t.count().over())  # a window function keeps every row
    assert shape(counts.union(counts)) == "aggregate" and shape(counts.union(per_row)) == "rows"


def test_a_roles_file_maps_the_lake_s_column_names_on_both_engines(lakes, tmp_path: Path) -> None:
    import duckdb

    source, folder = lakes[0].path, tmp_path / "renamed"
    renames = {"predictions": ("served_at", "p_churn"), "feedback": ("observed_at", None)}
    with duckdb.connect() as con:
        for table, (ts, score) in renames.items():
            (folder / table).mkdir(parents=True)
            rename = f"trace_id AS request_id, ts AS {ts}" + (f", score AS {score}" if score else "")
            drop = "trace_id, ts" + (", score" if score else "")
            files = f"read_parquet('{source / table}/**/*.parquet', hive_partitioning = true)"
            con.execute(f"COPY (SELECT {rename}, * EXCLUDE ({drop}) FROM {files}) "
                        f"TO '{folder / table / 'part.parquet'}' (FORMAT parquet)")  # fmt: skip
    roles = ('[predictions]\ntrace_id = "request_id"\nts = "served_at"\nscore = "p_churn"\n'
             'sensitive = ["age_band", "region"]\n'
             '[feedback]\ntrace_id = "request_id"\nts = "observed_at"\n')  # fmt: skip
    (folder / "roles.toml").write_text(roles, encoding="utf-8")
    duck, spark = validation_report(LakeStore(folder)), validation_report(SparkLakeStore(folder))
    assert duck["valid"] == validation_report(lakes[0])["valid"]
    assert duck["valid"]["predictions"] == ROWS
    assert spark == duck


def test_drift_with_the_multivariate_section_runs_on_spark_and_repeats(lakes) -> None:
    """Spark has no seeded TABLESAMPLE: the classifier's and the PCA's sample is a hash of trace id and seed there,
    so a second run gives the same section, and the dataset verdict is DuckDB's."""
    request = replace(_drift_request(lakes[0]), multivariate=True)
    duck = run_drift(StoreSource(lakes[0]), request).to_json()
    first, again = (run_drift(StoreSource(lakes[1]), request).to_json() for _ in range(2))
    assert first["verdict"] == duck["verdict"]
    section = first["reconstruction"]
    assert section is not None and section["warning"] is None, section
    assert 0 < section["sample_rows"] <= section["sample_limit"] == 5_000
    assert compare(first["reconstruction"], again["reconstruction"]) == ([], 0.0)


def test_spark_s_sample_is_the_rows_duckdb_s_hash_keeps_in_the_same_order(lakes) -> None:
    """Spark has no seeded TABLESAMPLE: the domain classifier's and the PCA's sample keeps the rows whose MD5 of
    ``trace_id:seed`` falls below the fraction (1.2 × 500 / 20,000 here), in the hash's order, then the first 500:
    the rows DuckDB computing the same hash keeps, in the same order (and those hashlib keeps by hand)."""
    import hashlib

    columns, rows, seed = ["trace_id", "score", "region"], 500, 11
    with StoreSource(lakes[0]).tables() as con:
        table = con.table("predictions")
        duck = hashed_sample(table, columns, 1.2 * rows / ROWS, seed).execute()
        ids = table.select("trace_id").execute()["trace_id"]
    with StoreSource(lakes[1]).tables() as con:
        spark = sample_rows(con.table("predictions"), columns, rows, ROWS, seed)  # the path the section takes
    limit = 1.2 * rows / ROWS * HASH_RANGE
    by_hand = {t for t in ids if int(hashlib.md5(f"{t}:{seed}".encode()).hexdigest()[:8], 16) < limit}
    assert set(duck["trace_id"]) == by_hand and 528 <= len(duck) <= 672  # 600 ± 3 standard errors
    assert len(spark) == rows
    for column in columns:
        assert spark[column].tolist() == duck[column].head(rows).tolist(), column


def test_the_hash_runs_without_whole_stage_codegen_and_the_setting_comes_back(lakes) -> None:
    """plain_codegen turns Spark's whole-stage code generation off inside (the hash's digits made its generated
    method too large to be compiled), keeps it off while any query is inside, and puts the session's value back
    after the last, also after an error; on DuckDB the query runs as it is."""
    from workbench.sources.spark import plain_codegen

    key = "spark.sql.codegen.wholeStage"
    with StoreSource(lakes[1]).tables() as con:
        table, session = con.table("predictions"), con._session
        before = session.conf.get(key, "true")
        with plain_codegen(table):
            assert session.conf.get(key) == "false"
            with plain_codegen(table):  # another query inside (another thread of the app): still off after it
                pass
            assert session.conf.get(key) == "false"
        assert session.conf.get(key, "true") == before
        with pytest.raises(RuntimeError), plain_codegen(table):
            raise RuntimeError("a failed query")
        assert session.conf.get(key, "true") == before
    with StoreSource(lakes[0]).tables() as con, plain_codegen(con.table("predictions")):
        assert con.table("predictions").count().execute() == ROWS
