"""A lake folder read in place, with no ingest: ``DIR/predictions/`` and ``DIR/feedback/`` hold Parquet files
(any number, hive-partitioned folders such as ``date=2026-03-01/`` allowed; a partition key is not a feature),
``DIR/roles.toml`` maps the column names (the ingest's roles file). It lives beside the ingest, not in
sources/, because it reads through the ingest's rules.

:class:`LakeStore` behaves as a read-only :class:`~workbench.sources.store.Store`, so every analysis runs on
it unchanged: each connection is an in-memory DuckDB whose ``predictions`` and ``feedback`` are views over the
files, cleaned by the ingest's own rules (:mod:`workbench.ingest.pipeline`: the same SQL for the same values);
a row that breaks a rule is left out of the analyses and listed in the ``quarantine`` view with its reason,
so ``workbench info`` (and ``workbench validate``) say how many and why. Rows repeating a key are resolved as
the ingest resolves them in the lake's order (file path, then row index): see :func:`left_out`. Nothing is
written to the lake: the kept sums the ingest maintains do not exist here, and the analyses take their plain
engine paths.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from workbench.core.errors import InputError, ReadOnlyError
from workbench.core.schema import FEEDBACK, PREDICTIONS, Roles, TableRoles, load_roles
from workbench.ingest.pipeline import DUPLICATE, REPEAT_COLUMNS, LakeView, lake_view
from workbench.ingest.staging import literal, q
from workbench.sources.snapshot_memo import SNAPSHOT_KEY, cache_folder, keep
from workbench.sources.spark import engine_name, new_session, spark_backend, spark_remote, spark_sql
from workbench.sources.store import (
    STORE_DDL,
    Store,
    bounded,
    default_db_path,
    quiet_utc,
    stored_roles,
    table_columns,
    write_meta,
)
from workbench.sources.store_queries import feedback_coverage

LAKE_PREFIX = "lake:"
SOURCE_ENV = "WORKBENCH_SOURCE"
_VIEWS: dict[tuple[str, str, tuple], LakeView] = {}  # (folder, table, file fingerprint) -> view SQL
_SPARK_ROWS: dict[tuple, tuple[tuple, Any]] = {}  # (Spark Connect address, folder, table) -> (files, rows read)
_LEFT_OUT: dict[tuple[str, str, tuple], tuple] = {}  # (folder, table, files) -> (plan, the repeat rule's rows)
_REJECTED: dict[tuple[str, str, tuple], tuple] = {}  # (folder, table, files) -> (plan, rows that break a rule)
LEFT_OUT_SCHEMA = pa.schema([("file", pa.string()), ("row_index", pa.int64()), ("status", pa.string()),
                             ("reason", pa.string()), ("raw", pa.string())])  # fmt: skip


def parquet_glob(folder: Path) -> str:
    """Every Parquet file below ``folder`` (any depth: hive partitions)."""
    return str(folder / "**" / "*.parquet")


def parquet_source(folder: Path) -> str:
    """The DuckDB table function reading ``folder``'s Parquet files (hive partitions, columns matched by name)."""
    return f"read_parquet('{parquet_glob(folder)}', hive_partitioning = true, union_by_name = true)"


def parquet_meta_source(folder: Path) -> str:
    """:func:`parquet_source` with each row's place: ``__file`` (its file's path below ``folder``) and ``__row``
    (its 0-based index in that file), the order the ingest's repeat rule reads the lake in."""
    start = len(str(folder)) + 2  # 1-based, after the folder and its slash
    files = parquet_source(folder)[: -len(")")] + ", filename = '__file', file_row_number = true)"
    return f"(SELECT * REPLACE (substr(__file, {start}) AS __file), file_row_number AS __row FROM {files})"


def partition_keys(folder: Path) -> set[str]:
    """The hive partition keys below ``folder`` (``date`` for ``date=2026-03-01/``)."""
    return {part.split("=", 1)[0] for f in folder.rglob("*.parquet") for part in f.relative_to(folder).parts[:-1]
            if "=" in part}  # fmt: skip


def _fingerprint(folder: Path) -> tuple:
    """The files' names, sizes and modification times: a new or changed file makes a new plan."""
    files = sorted(folder.rglob("*.parquet")) if folder.is_dir() else []
    return tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)


class LakeStore(Store):
    """A lake folder as a read-only store (see the module docstring); ``path`` is the folder."""

    def __init__(self, folder: str | Path):
        super().__init__(Path(folder))
        self.read_only = True

    def exists(self) -> bool:
        """True when the folder has ``predictions/`` with at least one Parquet file."""
        return any((self.path / PREDICTIONS).rglob("*.parquet")) if (self.path / PREDICTIONS).is_dir() else False

    def roles(self) -> Roles:
        """The lake's roles file, or canonical names when it has none."""
        path = self.path / "roles.toml"
        return load_roles(path) if path.is_file() else Roles()

    @contextmanager
    def connect(self, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """An in-memory DuckDB with the lake's views (and the store's other tables, empty); never writable."""
        if not read_only:
            raise ReadOnlyError(f"{self.path} is a lake folder: it is read in place, never written")
        if not self.exists():
            raise InputError(f"no lake at {self.path}: expected Parquet files in {self.path / PREDICTIONS}/")
        con = bounded(quiet_utc(duckdb.connect()))
        try:
            con.execute(STORE_DDL)
            roles = self.roles()
            quarantine, snapshot = [], []
            for table in (PREDICTIONS, FEEDBACK):
                view = self._view(con, table, roles)
                if view is None:
                    continue
                # the rows the rules and the repeat rule leave out, found once per snapshot, anti-joined
                rows = pa.concat_tables([rejected(self, con, table, view), left_out(self, con, table, view)])
                con.register("left_out_rows", rows)
                con.execute(f"CREATE TABLE lake_left_out_{table} AS SELECT * FROM left_out_rows")
                con.unregister("left_out_rows")
                view = view.checked(f"lake_left_out_{table}", none_left_out=not rows.num_rows)
                con.execute(f"DROP TABLE {table}")
                con.execute(f"CREATE VIEW {table} AS {view.rows_sql}")
                quarantine.append(view.quarantine_sql)
                if table == PREDICTIONS:
                    write_meta(con, "roles", view.roles.to_dict())
                snapshot.append((table, _fingerprint(self.path / table), view.rows_sql))
            con.execute("DROP TABLE quarantine")
            con.execute(f"CREATE VIEW quarantine AS {' UNION ALL '.join(quarantine)}")
            # what every view reads (files, rules, roles) and the day the clock rule was applied on: the key of the
            # results kept per snapshot (sources.snapshot_memo)
            day = datetime.now(UTC).date().isoformat()
            write_meta(con, SNAPSHOT_KEY, hashlib.sha256(repr((day, snapshot)).encode()).hexdigest())
            yield con
        finally:
            con.close()

    def _view(self, con: duckdb.DuckDBPyConnection, table: str, roles: Roles) -> LakeView | None:
        folder = self.path / table
        fingerprint = _fingerprint(folder)
        if not fingerprint:
            return None
        key = (str(self.path.resolve()), table, fingerprint)
        if key not in _VIEWS:
            view = lake_view(con, parquet_source(folder), table, roles, f"{table}/", parquet_meta_source(folder))
            if table == PREDICTIONS and roles.predictions.features is None:  # a partition key is not a feature
                keys = partition_keys(folder)
                found = view.roles.predictions
                kept = TableRoles(features=[f for f in found.features or [] if f not in keys],
                                  categorical=[c for c in found.categorical or [] if c not in keys],
                                  sensitive=found.sensitive)  # fmt: skip
                view = replace(view, roles=replace(view.roles, predictions=kept))
            _VIEWS[key] = view
        return _VIEWS[key]


class SparkLakeStore(LakeStore):
    """A lake folder whose analyses run on Apache Spark (``--engine spark``), read in place like :class:`LakeStore`.

    :meth:`ibis` yields Ibis' PySpark backend over a Spark session of its own whose temporary views
    ``predictions``, ``feedback`` and ``quarantine`` are the lake's Parquet files without the rows the ingest's
    rules and its repeat rule leave out: those are found once per snapshot of the files, as for DuckDB
    (:func:`rejected`, :func:`left_out`, kept in ``.lake-cache/``), and Spark leaves them out by file and row
    index (its ``_metadata``), the clean columns' SQL translated by :func:`~workbench.sources.spark.spark_sql`.
    Applying the rules in Spark's every query, then keeping the rows in its cache, took 300-400 s of each
    process at 20M predictions (2 cores, local mode). ``ingests`` is empty. Where an analysis reads metadata
    through the backend's ``con`` (on DuckDB the connection: the recorded roles, the columns' types), it finds a
    catalog: an in-memory DuckDB with the lake's tables, columns and roles and no rows, so no statistic can
    be computed there by mistake. The folder must be readable from this machine (the rules run here, with
    DuckDB, once per snapshot) and, with Spark Connect, from the cluster at the same path.
    """

    @contextmanager
    def ibis(self) -> Iterator[Any]:
        remote = spark_remote()
        session = new_session(remote)
        with self.connect() as con:
            quarantine = []
            for table in (PREDICTIONS, FEEDBACK):
                view = _VIEWS.get((str(self.path.resolve()), table, _fingerprint(self.path / table)))
                if view is None:  # no files: the store's empty table
                    session.sql(spark_sql(_empty_sql(con, table))).createOrReplaceTempView(table)
                    continue
                raw, source = f"lake_files_{table}", parquet_source(self.path / table)
                files = session.read.option("mergeSchema", "true").parquet(str((self.path / table).resolve()))
                files.createOrReplaceTempView(raw)
                # the rows the rules and the repeat rule leave out, found once per snapshot (connect() above), left
                # out by file and row index as on DuckDB: no check per row, and each query reads only its columns
                left = pa.concat_tables([_found(_REJECTED, self, table), _found(_LEFT_OUT, self, table)])
                session.createDataFrame(left.to_pandas(), schema=_SPARK_LEFT_OUT).createOrReplaceTempView(
                    f"lake_left_out_{table}"
                )
                view = view.checked(f"lake_left_out_{table}", none_left_out=not left.num_rows)
                rows_sql = view.rows_sql
                if left.num_rows:
                    _spark_places(files, self.path / table).createOrReplaceTempView(f"lake_meta_{table}")
                    rows_sql = rows_sql.replace(view.meta_source, f"lake_meta_{table}")
                rows = session.sql(spark_sql(rows_sql.replace(source, raw)))
                _SPARK_ROWS[(remote, self.path.resolve(), table)] = (_fingerprint(self.path / table), rows)
                rows.createOrReplaceTempView(table)
                quarantine.append(spark_sql(view.quarantine_sql))
            session.sql(" UNION ALL ".join(quarantine)).createOrReplaceTempView("quarantine")
            session.sql(spark_sql(_empty_sql(con, "ingests"))).createOrReplaceTempView("ingests")
            for name in (PREDICTIONS, FEEDBACK, "quarantine"):  # the catalog keeps their columns, not their rows
                con.execute(f"CREATE TABLE catalog_{name} AS SELECT * FROM {name} LIMIT 0")
                is_view = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [name]).fetchall()
                con.execute(f"DROP {'VIEW' if is_view[0][0] else 'TABLE'} {name}")
                con.execute(f"ALTER TABLE catalog_{name} RENAME TO {name}")
            backend = spark_backend(session)
            backend.con = con
            yield backend


_SPARK_LEFT_OUT = "file string, row_index bigint, status string, reason string, raw string"


def _spark_places(files: Any, folder: Path) -> Any:
    """Spark's rows of ``folder`` with DuckDB's ``__file`` and ``__row`` (:func:`parquet_meta_source`), from
    Spark 4's hidden ``_metadata``: ``file_path`` is a URI (``file:`` and the percent-encoded absolute path,
    where a ``+`` stays a ``+``), ``row_index`` the 0-based index in the file."""
    from pyspark.sql import functions as F

    start = len(f"file:{folder.resolve()}/") + 1
    decoded = F.expr("url_decode(replace(_metadata.file_path, '+', '%2B'))")
    return files.select("*", F.substring(decoded, start, 1 << 20).alias("__file"),
                        F.col("_metadata.row_index").alias("__row"))  # fmt: skip


def left_out(store: LakeStore, con: duckdb.DuckDBPyConnection, table: str, view: LakeView) -> pa.Table:
    """The rows of ``table`` the ingest's repeat rule leaves out (:data:`REPEAT_COLUMNS`: file, row index, status
    ``duplicate`` or ``quarantine``, reason, raw row), found once per snapshot of the files and kept.

    A lake read in place meets repeats the ingest resolves on the way in (a retried write, a sink's replay):
    identical copies count once, and under one key (predictions: trace_id; feedback: the whole event) a row
    with other values is quarantined, the first in the lake's order (file path, row index) kept. Cost: one
    GROUP BY over a hash of the key finds the repeated keys (none, usually: then nothing else runs and the
    analyses read the files as before; 1.6 s for 5M predictions, 2.4 s for their 5.4M feedback events on a
    loaded 2-core machine); only when some key repeats is the rule applied to those keys' rows.
    The result is kept in this process and in the data folder's ``.lake-cache/`` (one small Parquet file per
    snapshot of the folder's files: a new or changed file makes a new one), so the next process reads it.
    """

    def find() -> pa.Table:
        keys = con.sql(view.repeated_sql).to_arrow_table()
        if not keys.num_rows:
            return LEFT_OUT_SCHEMA.empty_table()
        con.register("repeated_keys", keys)
        found = con.sql(view.left_out_sql("SELECT * FROM repeated_keys")).to_arrow_table()
        con.unregister("repeated_keys")
        return found.select(list(REPEAT_COLUMNS)).cast(LEFT_OUT_SCHEMA)

    return _per_snapshot(_LEFT_OUT, store, table, "", (view.repeated_sql, view.parts), find)


def rejected(store: LakeStore, con: duckdb.DuckDBPyConnection, table: str, view: LakeView) -> pa.Table:
    """The rows of ``table`` that break one of the ingest's rules (columns :data:`REPEAT_COLUMNS`, status
    ``quarantine``, the first failing check as the reason), found once per snapshot of the files and UTC day.

    Applying the rules in every query read every column of every row: a count of the 20M-prediction demo
    lake's rows took 35 s instead of 0.3 s (loaded 2 cores). Once they are known, the analyses' queries leave
    these rows out by file and row index and read only the columns they need. The day is part of the key
    because one rule moves with the clock (a timestamp at most a day after now).
    """
    today = datetime.now(UTC).date().isoformat()
    find = lambda: con.sql(view.rejected_sql).to_arrow_table().select(list(REPEAT_COLUMNS)).cast(LEFT_OUT_SCHEMA)  # noqa: E731
    return _per_snapshot(_REJECTED, store, table, "-rejected", (today, view.rejected_sql), find)


def _found(memo: dict, store: LakeStore, table: str) -> pa.Table | None:
    """The rows :func:`_per_snapshot` kept in ``memo`` for the current snapshot of ``table``'s files, if any."""
    entry = memo.get((str(store.path.resolve()), table, _fingerprint(store.path / table)))
    return None if entry is None else entry[1]


def _per_snapshot(memo: dict, store: LakeStore, table: str, kind: str, plan: tuple, find: Any) -> pa.Table:
    """``find()``'s rows for this snapshot of ``table``'s files and this ``plan``: from ``memo`` (this process),
    else from the data folder's ``.lake-cache/`` (``<table><kind>-<digest>.parquet``, one small file per
    snapshot, so the next process reads it), else found and kept in both."""
    key = (str(store.path.resolve()), table, _fingerprint(store.path / table))
    if key in memo and memo[key][0] == plan:
        return memo[key][1]
    digest = hashlib.sha256(repr((key, plan)).encode()).hexdigest()[:24]
    cached = cache_folder() / f"{table}{kind}-{digest}.parquet"
    try:
        rows = pq.read_table(cached, schema=LEFT_OUT_SCHEMA)
    except (OSError, pa.ArrowException):
        rows = find()
        _keep(cached, rows)
    memo[key] = (plan, rows)
    return rows


def _keep(path: Path, rows: pa.Table) -> None:
    """Write the cache file (atomically; the newest :data:`~workbench.sources.snapshot_memo.CACHE_FILES` stay)."""
    try:
        sink = pa.BufferOutputStream()
        pq.write_table(rows, sink)
    except pa.ArrowException:
        return
    keep(path, sink.getvalue().to_pybytes())


def _empty_sql(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """A query with the columns of ``table`` (of the store's schema) and no rows."""
    columns = ", ".join(f"CAST(NULL AS {t}) AS {q(c)}" for c, t in table_columns(con, table).items())
    return f"SELECT {columns} WHERE false"


def export_lake(store: Store, folder: Path, partition: str = "date") -> Path:
    """Write ``store``'s two streams as a lake: Parquet files under ``folder/predictions/date=…/`` and
    ``folder/feedback/…`` (hive partitions by prediction/feedback day) and its roles as ``roles.toml``."""
    if folder.exists() and any(folder.iterdir()):
        raise InputError(f"{folder} is not empty: a lake is written into a new or empty folder")
    with store.connect() as con:
        roles = stored_roles(con)
        for table in (PREDICTIONS, FEEDBACK):
            columns = [c for c in table_columns(con, table) if not c.startswith("__") and c != "ingest_id"]
            (folder / table).mkdir(parents=True)
            select = f"SELECT {', '.join(q(c) for c in columns)}, strftime(ts, '%Y-%m-%d') AS {partition} FROM {table}"
            con.execute(
                f"COPY ({select}) TO {literal(str(folder / table))} (FORMAT parquet, PARTITION_BY ({partition}))"
            )
    sensitive = ", ".join(f'"{c}"' for c in roles.predictions.sensitive)
    (folder / "roles.toml").write_text(f"[predictions]\nsensitive = [{sensitive}]\n", encoding="utf-8")
    return folder


def lake_folder(spec: str | os.PathLike[str] | None) -> Path | None:
    """The folder of a ``lake:DIR`` source spec, or None for a store path."""
    text = os.fspath(spec) if spec is not None else ""
    return Path(text[len(LAKE_PREFIX) :]) if text.startswith(LAKE_PREFIX) else None


def open_store(spec: str | os.PathLike[str] | None, engine: str | None = None) -> Store:
    """The store a source spec names: ``lake:DIR`` (a :class:`LakeStore`) or a DuckDB file path; without one,
    ``$WORKBENCH_SOURCE``, else ``$WORKBENCH_DB``, else ``data/workbench.duckdb``. ``engine`` (else
    ``$WORKBENCH_ENGINE``, else duckdb): spark runs a lake's analyses on Spark (:class:`SparkLakeStore`)."""
    spec = spec or os.environ.get(SOURCE_ENV) or None
    folder = lake_folder(spec)
    if folder is None and spec is not None and (Path(spec) / PREDICTIONS).is_dir():
        folder = Path(spec)  # a folder with predictions/ is a lake (a store is a file): caches key on the path
    if engine_name(engine) == "spark":
        if folder is None:
            where = spec or default_db_path()
            raise InputError(f"the spark engine reads lake folders (--source lake:DIR); {where} is a DuckDB store")
        return SparkLakeStore(folder)
    return LakeStore(folder) if folder is not None else Store(spec)


def validation_report(store: LakeStore) -> dict[str, Any]:
    """What the ingest would do with the lake, by table (nothing is modified): the rows the analyses read
    (``valid``) and the quarantined ones by reason (a broken rule, or a repeated key with other values), counted
    by the store's engine (DuckDB, or Spark for a :class:`SparkLakeStore`), and the identical copies counted
    once (``duplicates``, from :func:`left_out`'s rows). ``feedback``: of the valid rows, the predictions with
    any feedback and with a label, and the feedback rows that name no prediction (orphans: no analysis can
    join them), from the store summary's coverage, which a lake keeps for its snapshot (each engine its own): the
    next ``info`` reads it instead of joining the two streams again (7.7 s of a 20M lake's first ``info``)."""
    with store.ibis() as con:
        quarantine = con.table("quarantine")
        rows = quarantine.group_by(["table_name", "reason"]).aggregate(n=quarantine.count()).to_pyarrow().to_pylist()
        kept = {t: int(con.table(t).count().execute()) for t in (PREDICTIONS, FEEDBACK)}
        with_any, with_label, orphans = feedback_coverage(con, con.table(PREDICTIONS), kept[FEEDBACK], True)
    by_table: dict[str, dict[str, int]] = {}
    for row in sorted(rows, key=lambda r: (r["table_name"], -r["n"], r["reason"])):
        by_table.setdefault(row["table_name"], {})[row["reason"]] = int(row["n"])
    duplicates = {}
    for table in (PREDICTIONS, FEEDBACK):
        repeats = _found(_LEFT_OUT, store, table)
        statuses = repeats.column("status").to_pylist() if repeats is not None else []
        duplicates[table] = statuses.count(DUPLICATE)
    return {
        "source": f"{LAKE_PREFIX}{store.path}",
        "valid": kept,
        "quarantined": {t: sum(r.values()) for t, r in by_table.items()},
        "reasons": by_table,
        "duplicates": duplicates,
        "feedback": {"predictions_with_feedback": with_any, "predictions_labelled": with_label, "orphans": orphans},
    }
