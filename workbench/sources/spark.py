"""Apache Spark as an engine: the session every Spark source shares, and the ingest's SQL rules in Spark's dialect.

``--engine spark`` (env ``WORKBENCH_ENGINE``) runs the analyses' Ibis queries on Spark through Ibis' PySpark
backend: a local session (``local[*]``, no UI, quiet logs, few shuffle partitions: the workbench's queries are
aggregates whose results are small) or, when ``WORKBENCH_SPARK_REMOTE=sc://host:port`` is set, a cluster through
Spark Connect. Only aggregates come back to Python; the DuckDB-only fast paths (kept sums, pulled sorted values)
are asked of the source (``sources.cursors``, ``sources.trace_feedback``) and say no on Spark.

The lake's cleaning rules are written once, in DuckDB SQL (:func:`workbench.ingest.pipeline.lake_view`);
:func:`spark_sql` translates them with sqlglot (Ibis' own SQL compiler) and rewrites the three DuckDB functions
Spark lacks, so both engines keep and quarantine the same rows for the same reasons.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.core.errors import InputError

ENGINE_ENV = "WORKBENCH_ENGINE"
REMOTE_ENV = "WORKBENCH_SPARK_REMOTE"
ENGINES = ("duckdb", "spark")
# Shuffle partitions: Spark's 200 cost ~1 s of task scheduling per grouped query on 2 cores; the groups here are
# arms, segments, bins and categories (hundreds to thousands of rows), so a few partitions per core suffice.
SHUFFLE_PARTITIONS = 4

_lock = threading.Lock()
_plain_codegen: dict[int, list] = {}  # per session: [queries inside plain_codegen, the setting before them]
_sessions: dict[str, Any] = {}


def engine_name(value: str | None = None) -> str:
    """The engine to run on: ``value``, else ``$WORKBENCH_ENGINE``, else duckdb (anything else: InputError)."""
    name = (value or os.environ.get(ENGINE_ENV) or "duckdb").strip().lower()
    if name not in ENGINES:
        raise InputError(f"unknown engine '{name}': choose {' or '.join(ENGINES)}")
    return name


def spark_remote() -> str | None:
    """The Spark Connect address (``sc://host:port``) from ``$WORKBENCH_SPARK_REMOTE``, or None for local mode."""
    remote = (os.environ.get(REMOTE_ENV) or "").strip()
    if remote and not remote.startswith("sc://"):
        raise InputError(f"${REMOTE_ENV} must look like sc://host:port, not '{remote}'")
    return remote or None


def spark_session(remote: str | None = None) -> Any:
    """The process' Spark session for ``remote`` (``sc://host:port``; None: local mode, made once and kept).

    Local mode: ``local[*]``, the web UI off, warnings only, session time zone UTC (the store's),
    :data:`SHUFFLE_PARTITIONS` shuffle partitions and :func:`driver_memory` of heap. Startup (the JVM) takes
    5-10 s once per process.
    """
    key = remote or "local"
    with _lock:
        session = _sessions.get(key)
        if session is not None and (remote is not None or not _stopped(session)):
            return session
        try:
            from pyspark.sql import SparkSession

            builder = SparkSession.builder.appName("feedback-workbench")
            conf = {"spark.sql.session.timeZone": "UTC", "spark.sql.shuffle.partitions": str(SHUFFLE_PARTITIONS)}
            if remote is None:
                builder = builder.master("local[*]")
                logs = f"-Dlog4j2.configurationFile=file:{_log_config()}"
                conf |= {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                         "spark.driver.extraJavaOptions": logs, "spark.driver.memory": driver_memory()}  # fmt: skip
            else:
                builder = builder.remote(remote)
            for name, value in conf.items():
                builder = builder.config(name, value)
            with contextlib.nullcontext() if remote is not None else _jvm_stderr_to(jvm_log()):
                session = builder.getOrCreate()
        except Exception as exc:  # a JVM that fails to start, an unreachable Connect server
            where = remote or "local mode"
            first = str(exc).splitlines()[0] if str(exc) else exc
            logged = "" if remote is not None else f" (the JVM's messages: {jvm_log()})"
            raise InputError(f"cannot start Spark ({where}): {first}{logged}") from None
        if remote is None:
            session.sparkContext.setLogLevel("ERROR")
        _sessions[key] = session
        return session


@contextlib.contextmanager
def plain_codegen(table: Any) -> Iterator[None]:
    """Spark's whole-stage code generation off for the queries run inside, when ``table`` is on Spark (else nothing).

    A long per-row expression (the portable MD5 hash's eight hex digits, :mod:`workbench.sources.hashing`) makes
    the stage's generated method too large for the JVM's just-in-time compiler, and it runs interpreted: the 20M
    demo lake's seeded samples took 142-180 s a window that way. Generated per operator instead, the same
    projection compiles (1.8M rows: 12-14 s whole-stage, 2.5 s per operator, once warm).
    """
    backend = table._find_backend()
    session = getattr(backend, "_session", None)
    if getattr(backend, "name", None) != "pyspark" or session is None:
        yield
        return
    key = "spark.sql.codegen.wholeStage"
    with _lock:  # threads sharing the session (the app's pages): off from the first in, back after the last out
        holders = _plain_codegen.setdefault(id(session), [0, None])
        if holders[0] == 0:
            holders[1] = session.conf.get(key, "true")
            session.conf.set(key, "false")
        holders[0] += 1
    try:
        yield
    finally:
        with _lock:
            holders[0] -= 1
            if holders[0] == 0:
                session.conf.set(key, holders[1])
                del _plain_codegen[id(session)]


MEMORY_ENV = "WORKBENCH_SPARK_MEMORY"


def driver_memory() -> str:
    """The local session's JVM heap (``spark.driver.memory``, which in local mode runs the tasks too):
    ``$WORKBENCH_SPARK_MEMORY`` (e.g. ``8g``), else half this machine's memory, at most 4 GiB, at least 1 GiB.

    Spark's default of 1 GiB ran out of heap at 20M predictions (the check's exact label-delay quantile and
    drift's reference pass: ``java.lang.OutOfMemoryError: Java heap space``).
    """
    chosen = (os.environ.get(MEMORY_ENV) or "").strip().lower()
    if chosen:
        if not chosen[:-1].isdigit() or chosen[-1] not in "mg":
            raise InputError(f"${MEMORY_ENV} must look like 4g or 512m, not '{chosen}'")
        return chosen
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "1g"
    return f"{max(1, min(4, total // 2 // 2**30))}g"


# Spark's JVM logs errors only, on its stderr (:func:`jvm_log`): the CLI's stderr is for one-line messages (Spark's
# default is every warning). A PySpark session starts as a shell, which still prints its log-level banner there.
_LOG4J2 = """rootLogger.level = error
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark %p %c{1}: %m%n
"""


def jvm_log() -> Path:
    """Where the local JVM writes its stderr: appended, one file per user in the temp directory (a shared ``/tmp``
    holds one for each user)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"workbench-spark-jvm-{uid}.log"


@contextlib.contextmanager
def _jvm_stderr_to(path: Path) -> Iterator[None]:
    """Point this process' file descriptor 2 at ``path`` while the JVM is launched, so that the JVM (a child that
    inherits it) writes there for its whole life: its start prints a warning of its own (``Using incubator
    modules``, from the module options Spark 4 adds, which no log setting silences), and the CLI's stderr is for
    one-line messages. Python's own stderr is back on the terminal as soon as the JVM has started; meanwhile (5-10 s,
    once per process) what other threads write on stderr lands in the log too. A log that cannot be opened leaves
    stderr as it is."""
    try:
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        yield
        return
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved, 2)  # restored first, whatever else fails
        os.close(saved)
        os.close(target)


def _log_config() -> Path:
    path = Path(tempfile.gettempdir()) / "workbench-spark-log4j2.properties"
    if not path.is_file() or path.read_text(encoding="utf-8") != _LOG4J2:
        path.write_text(_LOG4J2, encoding="utf-8")
    return path


def _stopped(session: Any) -> bool:
    context = getattr(session, "_sc", None)
    return context is not None and context._jsc is None


def new_session(remote: str | None = None) -> Any:
    """A session of its own (its own temporary views) on the shared engine: one per open source, so two lakes
    (or two app users) never see each other's ``predictions`` view. Spark Connect: the shared session."""
    session = spark_session(remote)
    return session if remote is not None else session.newSession()


def spark_sql(duckdb_sql: str) -> str:
    """``duckdb_sql`` in Spark's dialect (sqlglot), with DuckDB's ``isfinite``/``isinf`` and its parenthesised
    interval written the way Spark has them (Spark's timestamps have no infinity: ``isfinite`` is true)."""
    import sqlglot
    from sqlglot import exp

    def rewrite(node: exp.Expression) -> exp.Expression:
        name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
        if name == "isfinite":
            return exp.true()
        if name == "isinf" or type(node).__name__ == "IsInf":
            arg = node.expressions[0] if isinstance(node, exp.Anonymous) else node.this
            infinity = exp.cast(exp.Literal.string("Infinity"), "double")
            return exp.EQ(this=exp.Abs(this=arg.copy()), expression=infinity)
        if isinstance(node, exp.Interval) and isinstance(node.this, exp.Paren):
            return exp.Interval(this=exp.Literal.string(node.this.this.name), unit=node.args.get("unit"))
        return node

    tree = sqlglot.parse_one(duckdb_sql, read="duckdb").transform(rewrite)
    return tree.sql(dialect="spark")


def spark_backend(session: Any) -> Any:
    """Ibis' PySpark backend over ``session``, reading Spark's timestamps as the instants they are (UTC).

    Spark's ``TIMESTAMP`` is an instant shown in the session's time zone (UTC here), as DuckDB's ``TIMESTAMPTZ``;
    Ibis 12 types it without a zone, which would give naive times where DuckDB gives UTC ones (and compare
    naive columns with the windows' UTC bounds). The schema says UTC instead: the same values, the same type.
    Epoch seconds keep their fraction, as on DuckDB.
    """
    import ibis
    from ibis.backends.pyspark import Backend

    _ = ibis.pyspark  # loads the backend through ibis (which registers its options)

    class EpochCompiler(type(Backend.compiler)):
        def visit_ExtractEpochSeconds(self, op: Any, *, arg: Any) -> Any:
            """Seconds since the epoch with their fraction, as DuckDB's ``epoch`` (Spark's ``unix_timestamp``
            drops it: label delays and their quantiles would differ by up to a second)."""
            return self.f.unix_micros(arg) / 1_000_000

    class UtcBackend(Backend):
        compiler = EpochCompiler()

        def get_schema(self, table_name: str, *, catalog: str | None = None, database: str | None = None) -> Any:
            schema = super().get_schema(table_name, catalog=catalog, database=database)
            return _utc(schema)

        def _get_schema_using_query(self, query: str) -> Any:
            return _utc(super()._get_schema_using_query(query))

    return UtcBackend().connect(session)


def _utc(schema: Any) -> Any:
    import ibis.expr.datatypes as dt
    import ibis.expr.schema as sch

    def zoned(dtype: Any) -> Any:
        utc = dtype.is_timestamp()
        return dt.Timestamp(timezone="UTC", scale=dtype.scale, nullable=dtype.nullable) if utc else dtype

    return sch.Schema({name: zoned(dtype) for name, dtype in schema.items()})
