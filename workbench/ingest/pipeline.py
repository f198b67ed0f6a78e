"""Ingestion that loses nothing: read a file, validate each row, quarantine the rejects, append.

Validation runs inside DuckDB (one pass of SQL, no Python loop per row), and one ingest is one
transaction: failing or killed half-way, the store is exactly as before. Re-ingesting a file adds
nothing: a row whose trace_id (predictions) or whole content (feedback) is already in the store
with the same values counts as a duplicate; the same trace_id with other values is quarantined.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from workbench.core.errors import InputError
from workbench.core.files import detect_format
from workbench.core.schema import FEEDBACK, FEEDBACK_KINDS, PREDICTIONS, ROLES_BY_TABLE, Roles, TableRoles
from workbench.sources import experiment, trace_feedback
from workbench.sources.store import Store, stored_roles, table_columns, write_meta

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE")
NUMERIC_TYPES += ("UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
FEEDBACK_KEY = ("trace_id", "ts", "kind", "type", "value", "label")
# 1-based data row of the file. ``staging`` keeps the file's order (DuckDB preserves insertion
# order); inside a transaction its rowids start at a large offset, so count from the smallest.
_ROW = "(rowid - (SELECT min(rowid) FROM staging) + 1)"
# A text column is numeric when at least this share of its values are numbers; the rest are
# quarantined as "not a number" rather than turning the whole column into categories.
NUMERIC_SHARE = 0.95

# Called after the accepted rows are inserted and before the commit; tests use it to inject a
# failure (or a pause to kill the process) and check that the ingest leaves the store unchanged.
_after_insert_hook: Callable[[], None] | None = None


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did: counts of accepted, duplicate and quarantined rows, by reason."""

    table: str
    source: str
    accepted: int
    duplicates: int
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the CLI contract: accepted, duplicates, quarantined, reasons)."""
        return asdict(self)


def q(name: str) -> str:
    """Quote an identifier for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _reader_error(path: Path, fmt: str, exc: Exception) -> InputError:
    text = str(exc)
    low = text.lower()
    if "unicode" in low or "utf-8" in low or "utf8" in low or "encoding" in low:
        return InputError(f"{path.name}: not valid UTF-8 text; save the file as UTF-8 and retry")
    if "empty" in low or "no columns" in low:
        return InputError(f"{path.name}: the file is empty")
    if fmt == "parquet":
        return InputError(f"{path.name}: not a readable Parquet file")
    if fmt == "json":
        return InputError(f"{path.name}: not JSON Lines (one JSON object per line)")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return InputError(f"{path.name}: cannot be read as {fmt.upper()}: {first[:160]}")


def _load_file(con: duckdb.DuckDBPyConnection, path: Path, workdir: Path) -> None:
    """Load the raw file into TEMP table ``staging`` (CSV as text, so nothing is lost)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: the file is empty")
    fmt, gzipped = detect_format(path)
    source = path
    if gzipped and fmt == "parquet":
        source = workdir / path.name[:-3]
        try:
            with gzip.open(path, "rb") as src, open(source, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, EOFError):
            raise InputError(f"{path.name}: not a readable gzip file") from None
    lit = _literal(str(source))
    if fmt == "csv":
        delim = ", delim = '\\t'" if ".tsv" in path.name.lower() else ""
        reader = f"read_csv({lit}, all_varchar = true, header = true{delim})"
    elif fmt == "json":
        reader = f"read_json({lit}, format = 'auto', sample_size = -1)"
    else:
        reader = f"read_parquet({lit})"
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE staging AS SELECT * FROM {reader}")
    except duckdb.Error as exc:
        raise _reader_error(path, fmt, exc) from None


def _num(col: str, dtype: str) -> str:
    """SQL for a column as DOUBLE: numbers as they are, 'true'/'false' as 1/0, else TRY_CAST."""
    if dtype.startswith(NUMERIC_TYPES) or dtype.startswith("DECIMAL") or dtype == "BOOLEAN":
        return f"CAST({q(col)} AS DOUBLE)"
    text = f"lower(trim(CAST({q(col)} AS VARCHAR)))"
    return (
        f"CASE WHEN {text} = 'true' THEN 1.0 WHEN {text} = 'false' THEN 0.0 "
        f"ELSE TRY_CAST(trim(CAST({q(col)} AS VARCHAR)) AS DOUBLE) END"
    )


def _text(col: str) -> str:
    return f"NULLIF(trim(CAST({q(col)} AS VARCHAR)), '')"


def _role_sql(role: str, kind: str, col: str, dtype: str, required: bool) -> tuple[str, list[tuple[str, str]]]:
    """Return (clean expression, [(failure condition, reason)]) for one role column."""
    raw_missing = f"{_text(col)} IS NULL"
    label = role if role == col else f"{role} (column '{col}')"
    checks: list[tuple[str, str]] = [(raw_missing, f"missing {label}")] if required else []
    if kind in ("id", "text"):
        return _text(col), checks
    if kind == "kind":
        clean = f"lower({_text(col)})"
        allowed = ", ".join(_literal(k) for k in FEEDBACK_KINDS)
        reason = f"{label} is not one of {', '.join(FEEDBACK_KINDS)}"
        return clean, [*checks, (f"NOT {raw_missing} AND {clean} NOT IN ({allowed})", reason)]
    if kind == "timestamp":
        clean = (
            f"TRY_CAST({_text(col)} AS TIMESTAMPTZ)" if dtype == "VARCHAR" else (f"TRY_CAST({q(col)} AS TIMESTAMPTZ)")
        )
        bad = f"NOT {raw_missing} AND ({clean} IS NULL OR NOT isfinite({clean}))"
        return clean, [*checks, (bad, f"{label} is not a timestamp")]
    clean = _num(col, dtype)
    not_number = f"NOT {raw_missing} AND ({clean} IS NULL OR isnan({clean}) OR isinf({clean}))"
    checks.append((not_number, f"{label} is not a number"))
    if kind == "binary":
        checks.append((f"NOT {raw_missing} AND {clean} NOT IN (0, 1)", f"{label} is not 0 or 1"))
    elif kind == "probability":
        checks.append((f"NOT {raw_missing} AND ({clean} < 0 OR {clean} > 1)", f"{label} is outside [0, 1]"))
    return clean, checks


@dataclass(frozen=True)
class _Plan:
    """How each staging column becomes a store column: SQL, type, and the row checks."""

    select: dict[str, str]  # store column -> clean SQL expression
    types: dict[str, str]  # store column -> DuckDB type (for columns to add)
    checks: list[tuple[str, str]]
    roles: Roles


def _infer_type(con: duckdb.DuckDBPyConnection, col: str, dtype: str) -> str:
    """DuckDB type for a new extra column: text that is (almost) all numbers becomes DOUBLE."""
    if dtype != "VARCHAR":
        return "VARCHAR" if dtype == "BOOLEAN" else dtype
    n_values, n_numbers = con.execute(
        f"SELECT count({_text(col)}), count(TRY_CAST({_text(col)} AS DOUBLE)) FROM staging"
    ).fetchone()
    return "DOUBLE" if n_values > 0 and n_numbers >= NUMERIC_SHARE * n_values else "VARCHAR"


def _plan(con: duckdb.DuckDBPyConnection, table: str, roles: Roles, name: str) -> _Plan:
    staging = table_columns_temp(con)
    mine = roles.for_table(table)
    select: dict[str, str] = {}
    checks: list[tuple[str, str]] = []
    role_cols = set()
    for role, (required, kind) in ROLES_BY_TABLE[table].items():
        col = mine.source_column(role)
        if col not in staging:
            if required:
                found = ", ".join(list(staging)[:12])
                raise InputError(f"{name}: missing required column '{col}' (role {role}); found: {found}")
            continue
        role_cols.add(col)
        clean, role_checks = _role_sql(role, kind, col, staging[col], required)
        select[role] = clean
        checks.extend(role_checks)
    extras = [c for c in staging if c not in role_cols]
    clash = [c for c in extras if c in ROLES_BY_TABLE[table] or c == "ingest_id"]
    if clash:
        raise InputError(f"{name}: column '{clash[0]}' is a role name but is mapped to another column")
    store_types = table_columns(con, table)
    declared_cat = set(mine.categorical or [])
    sensitive = [c for c in mine.sensitive]
    for listed in [*(mine.features or []), *declared_cat, *sensitive]:
        if listed not in staging:
            raise InputError(f"{name}: the roles name column '{listed}', which the file lacks")
    types: dict[str, str] = {}
    for col in extras:
        if col in store_types:
            target = store_types[col]
        elif col in declared_cat or col in sensitive:
            target = "VARCHAR"
        else:
            target = _infer_type(con, col, staging[col])
        types[col] = target
        if target == "VARCHAR":
            select[col] = _text(col)
        elif target == "DOUBLE":
            select[col] = _num(col, staging[col])
            checks.append((f"{_text(col)} IS NOT NULL AND {select[col]} IS NULL", f"column '{col}' is not a number"))
        else:
            select[col] = f"TRY_CAST({q(col)} AS {target})"
            checks.append((f"{q(col)} IS NOT NULL AND {select[col]} IS NULL", f"column '{col}' is not {target}"))
    new_roles = roles
    if table == PREDICTIONS:
        features = mine.features if mine.features is not None else [c for c in extras if c not in sensitive]
        categorical = sorted(declared_cat | {c for c in features if types.get(c) == "VARCHAR"})
        new_roles = Roles(
            predictions=TableRoles(features=features, categorical=categorical, sensitive=sensitive),
            feedback=roles.feedback,
        )
    return _Plan(select=select, types=types, checks=checks, roles=new_roles)


def table_columns_temp(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Columns and types of the TEMP ``staging`` table."""
    rows = con.execute("SELECT column_name, column_type FROM (DESCRIBE staging)").fetchall()
    return dict(rows)


def _stage(con: duckdb.DuckDBPyConnection, table: str, plan: _Plan) -> None:
    """Create TEMP ``decided``: clean columns, ``__status`` (accept/duplicate/quarantine), reason."""
    reason = "CASE " + " ".join(f"WHEN {cond} THEN {_literal(r)}" for cond, r in plan.checks)
    reason += " END" if plan.checks else "NULL"
    cols = ", ".join(f"{expr} AS {q(c)}" for c, expr in plan.select.items())
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE clean AS SELECT {_ROW} AS __row, {cols}, "
        f"{reason if plan.checks else 'NULL'} AS __reason FROM staging"
    )
    store_cols = list(plan.select)
    key = ["trace_id"] if table == PREDICTIONS else list(FEEDBACK_KEY)
    key = [k for k in key if k in plan.select]
    same = " AND ".join(f"c.{q(k)} IS NOT DISTINCT FROM s.{q(k)}" for k in key)
    existing = table_columns(con, table)
    # A column the store lacks is NULL there, so the row is identical only if its value is NULL.
    all_same = " AND ".join(
        f"c.{q(k)} IS NOT DISTINCT FROM s.{q(k)}" if k in existing else f"c.{q(k)} IS NULL" for k in store_cols
    )
    partition = ", ".join(q(k) for k in key)
    row_hash = f"hash({', '.join(q(c) for c in store_cols)})"
    # In-file repeats: an identical repeat is a duplicate; a different row under the same key is
    # quarantined (for feedback the key is the whole event, so repeats are always identical).
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE ranked AS
        SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY __row) AS __k,
               {row_hash} = first_value({row_hash}) OVER (PARTITION BY {partition} ORDER BY __row)
                   AS __same_as_first
        FROM clean WHERE __reason IS NULL
        """
    )
    # One hash join on trace_id (required, so never NULL) finds each first occurrence's rows in the
    # store; the key and whole-row comparisons are then aggregated per file row. Cost: one scan of
    # the store's matching rows, not one correlated subquery per condition.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE store_match AS
        SELECT c.__row, bool_or({same}) AS __in_store, bool_or({same} AND {all_same}) AS __identical
        FROM ranked c JOIN {table} s ON c.trace_id = s.trace_id
        WHERE c.__k = 1
        GROUP BY c.__row
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE decided AS
        SELECT c.*,
          CASE WHEN c.__k > 1 AND c.__same_as_first THEN 'duplicate'
               WHEN c.__k > 1 THEN 'quarantine'
               WHEN m.__in_store AND m.__identical THEN 'duplicate'
               WHEN m.__in_store THEN 'quarantine'
               ELSE 'accept' END AS __status,
          CASE WHEN c.__k > 1 AND NOT c.__same_as_first
                 THEN 'duplicate trace_id in file with other values'
               WHEN c.__k = 1 AND m.__in_store AND NOT m.__identical
                 THEN 'trace_id already in store with other values'
          END AS __dup_reason
        FROM ranked c LEFT JOIN store_match m USING (__row)
        """
    )


def _commit(con: duckdb.DuckDBPyConnection, table: str, plan: _Plan, source: str) -> IngestResult:
    reserved = [c for c in plan.types if table == PREDICTIONS and c.startswith(experiment.HIDDEN_PREFIX)]
    if reserved:
        raise InputError(f"{source}: column '{reserved[0]}' uses the store's reserved prefix "
                         f"'{experiment.HIDDEN_PREFIX}'; rename it")  # fmt: skip
    for col, dtype in plan.types.items():
        if col not in table_columns(con, table):
            con.execute(f"ALTER TABLE {table} ADD COLUMN {q(col)} {dtype}")
    ingest_id = con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM ingests").fetchone()[0]
    cols = ", ".join(q(c) for c in plan.select)
    con.execute(
        f"INSERT INTO {table} ({cols}, ingest_id) "
        f"SELECT {cols}, {ingest_id} FROM decided WHERE __status = 'accept' ORDER BY __row"
    )
    if _after_insert_hook is not None:
        _after_insert_hook()
    staging = table_columns_temp(con)
    raw = "to_json(struct_pack(" + ", ".join(f"{q(c)} := st.{q(c)}" for c in staging) + "))"
    con.execute(
        f"""
        INSERT INTO quarantine
        SELECT {ingest_id}, {_literal(table)}, {_literal(source)}, r.__row, {raw}, r.reason, now()
        FROM (SELECT __row, __reason AS reason FROM clean WHERE __reason IS NOT NULL
              UNION ALL
              SELECT __row, __dup_reason FROM decided WHERE __status = 'quarantine') r
        JOIN (SELECT {_ROW} AS __row, * FROM staging) st USING (__row)
        ORDER BY r.__row
        """
    )
    # What this ingest rejected, counted before the quarantine drops rows it already holds
    # (re-ingesting a file must not grow the store, quarantine included).
    reasons = dict(
        con.execute(
            "SELECT reason, count(*) FROM quarantine WHERE ingest_id = ? GROUP BY reason ORDER BY 2 DESC, 1",
            [ingest_id],
        ).fetchall()
    )
    con.execute(
        """
        DELETE FROM quarantine n WHERE n.ingest_id = ? AND EXISTS (
            SELECT 1 FROM quarantine o WHERE o.ingest_id < n.ingest_id AND o.table_name = n.table_name
              AND o.raw = n.raw AND o.reason = n.reason)
        """,
        [ingest_id],
    )
    accepted, duplicates = con.execute(
        "SELECT count(*) FILTER (__status = 'accept'), count(*) FILTER (__status = 'duplicate') FROM decided"
    ).fetchone()
    quarantined = sum(reasons.values())
    write_meta(con, "roles", _union_lists(con, plan.roles))  # before the kept sums: they keep the roles' segments
    # the per-trace feedback summary, its copy on the prediction rows and the per-unit sums (the fairness audit
    # and the A/B analysis read them), here
    trace_feedback.after_ingest(con, table, ingest_id, int(accepted))
    con.execute(
        "INSERT INTO ingests VALUES (?, ?, ?, now(), ?, ?, ?)",
        [ingest_id, table, source, accepted, duplicates, quarantined],
    )
    return IngestResult(table, source, int(accepted), int(duplicates), int(quarantined), reasons)


def _union_lists(con: duckdb.DuckDBPyConnection, new: Roles) -> dict[str, Any]:
    """Stored prediction roles after this ingest: feature, categorical, sensitive lists unioned."""
    old = stored_roles(con).predictions
    cur = new.predictions

    def union(a: list[str] | None, b: list[str] | None) -> list[str]:
        return list(dict.fromkeys([*(a or []), *(b or [])]))

    merged = TableRoles(
        features=union(old.features, cur.features),
        categorical=union(old.categorical, cur.categorical),
        sensitive=union(old.sensitive, cur.sensitive),
    )
    return {"predictions": asdict(merged), "feedback": asdict(TableRoles())}


def _infer_table(con: duckdb.DuckDBPyConnection, roles: Roles, name: str) -> str:
    cols = table_columns_temp(con)
    if roles.predictions.source_column("prediction") in cols:
        return PREDICTIONS
    if roles.feedback.source_column("kind") in cols:
        return FEEDBACK
    raise InputError(f"{name}: cannot tell predictions from feedback (no 'prediction' or 'kind' column); pass --table")


Loader = Callable[[duckdb.DuckDBPyConnection], None]


def _ingest_one(
    con: duckdb.DuckDBPyConnection, load: Loader, table: str | None, roles: Roles, source: str
) -> IngestResult:
    load(con)
    if con.execute("SELECT count(*) FROM staging").fetchone()[0] == 0:
        raise InputError(f"{source}: the file has no rows")
    table = table or _infer_table(con, roles, source)
    if table not in (PREDICTIONS, FEEDBACK):
        raise InputError(f"unknown table '{table}': use predictions or feedback")
    plan = _plan(con, table, roles, source)
    _stage(con, table, plan)
    return _commit(con, table, plan, source)


def _run(store: Store, loads: list[tuple[Loader, str, str | None]], roles: Roles | None) -> list[IngestResult]:
    """Ingest every (loader, source, table) in one transaction: all land, or (on any error) none does."""
    with store.connect(read_only=False) as con:
        con.begin()
        try:
            results = [_ingest_one(con, load, table, roles or Roles(), source) for load, source, table in loads]
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return results


def ingest_files(
    store: Store, paths: list[str | Path], table: str | None = None, roles: Roles | None = None
) -> list[IngestResult]:
    """Validate and append files (CSV, Parquet, JSON Lines; each optionally .gz) in one transaction."""
    with tempfile.TemporaryDirectory() as workdir:
        loads = [(_file_loader(Path(path), Path(workdir)), Path(path).name, table) for path in paths]
        return _run(store, loads, roles)


def ingest_file(store: Store, path: str | Path, table: str | None = None, roles: Roles | None = None) -> IngestResult:
    """Validate and append one file; see :func:`ingest_files`."""
    return ingest_files(store, [path], table, roles)[0]


def _file_loader(path: Path, workdir: Path) -> Loader:
    return lambda con: _load_file(con, path, workdir)


def _frame_loader(frame: Any) -> Loader:
    def load(con: duckdb.DuckDBPyConnection) -> None:
        con.register("incoming_frame", frame)
        con.execute("CREATE OR REPLACE TEMP TABLE staging AS SELECT * FROM incoming_frame")
        con.unregister("incoming_frame")

    return load


def ingest_frames(
    store: Store, frames: list[tuple[Any, str]], roles: Roles | None = None, source: str = "dataframe"
) -> list[IngestResult]:
    """Validate and append in-memory tables [(pandas or Arrow frame, table name)] in one transaction."""
    return _run(store, [(_frame_loader(frame), f"{source}:{table}", table) for frame, table in frames], roles)


def ingest_frame(
    store: Store, frame: Any, table: str, roles: Roles | None = None, source: str = "dataframe"
) -> IngestResult:
    """Validate and append one in-memory pandas DataFrame or Arrow table, like a file."""
    return _run(store, [(_frame_loader(frame), source, table)], roles)[0]


def total(results: list[IngestResult]) -> dict[str, Any]:
    """Sum several ingests into the CLI's JSON document, with each file under ``files``."""
    reasons: dict[str, int] = {}
    for r in results:
        for reason, n in r.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
    return {
        "accepted": sum(r.accepted for r in results),
        "duplicates": sum(r.duplicates for r in results),
        "quarantined": sum(r.quarantined for r in results),
        "reasons": reasons,
        "files": [r.to_dict() for r in results],
    }
