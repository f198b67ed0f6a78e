"""A lake folder read in place, with no ingest: ``DIR/predictions/`` and ``DIR/feedback/`` hold Parquet files
(any number, hive-partitioned folders such as ``date=2026-03-01/`` allowed; a partition key is not a feature),
``DIR/roles.toml`` maps the column names (the ingest's roles file). It lives beside the ingest, not in
sources/, because it reads through the ingest's rules.

:class:`LakeStore` behaves as a read-only :class:`~workbench.sources.store.Store`, so every analysis runs on
it unchanged: each connection is an in-memory DuckDB whose ``predictions`` and ``feedback`` are views over the
files, cleaned by the ingest's own rules (:mod:`workbench.ingest.pipeline`: the same SQL for the same values);
a row that breaks a rule is left out of the analyses and listed in the ``quarantine`` view with its reason,
so ``workbench info`` (and ``workbench validate``) say how many and why. Nothing is written: the kept sums
the ingest maintains do not exist here, and the analyses take their plain engine paths.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

from workbench.core.errors import InputError, ReadOnlyError
from workbench.core.schema import FEEDBACK, PREDICTIONS, Roles, TableRoles, load_roles
from workbench.ingest.pipeline import LakeView, lake_view
from workbench.ingest.staging import literal, q
from workbench.sources.store import STORE_DDL, Store, quiet_utc, stored_roles, table_columns, write_meta

LAKE_PREFIX = "lake:"
SOURCE_ENV = "WORKBENCH_SOURCE"
_VIEWS: dict[tuple[str, str, tuple], LakeView] = {}  # (folder, table, file fingerprint) -> view SQL


def parquet_glob(folder: Path) -> str:
    """Every Parquet file below ``folder`` (any depth: hive partitions)."""
    return str(folder / "**" / "*.parquet")


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
        con = quiet_utc(duckdb.connect())
        try:
            con.execute(STORE_DDL)
            roles = self.roles()
            quarantine = []
            for table in (PREDICTIONS, FEEDBACK):
                view = self._view(con, table, roles)
                if view is None:
                    continue
                con.execute(f"DROP TABLE {table}")
                con.execute(f"CREATE VIEW {table} AS {view.rows_sql}")
                quarantine.append(view.quarantine_sql)
                if table == PREDICTIONS:
                    write_meta(con, "roles", view.roles.to_dict())
            con.execute("DROP TABLE quarantine")
            con.execute(f"CREATE VIEW quarantine AS {' UNION ALL '.join(quarantine)}")
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
            source = f"read_parquet('{parquet_glob(folder)}', hive_partitioning = true, union_by_name = true)"
            view = lake_view(con, source, table, roles, f"{table}/")
            if table == PREDICTIONS and roles.predictions.features is None:  # a partition key is not a feature
                keys = partition_keys(folder)
                found = view.roles.predictions
                kept = TableRoles(features=[f for f in found.features or [] if f not in keys],
                                  categorical=[c for c in found.categorical or [] if c not in keys],
                                  sensitive=found.sensitive)  # fmt: skip
                view = replace(view, roles=replace(view.roles, predictions=kept))
            _VIEWS[key] = view
        return _VIEWS[key]


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


def open_store(spec: str | os.PathLike[str] | None) -> Store:
    """The store a source spec names: ``lake:DIR`` (a :class:`LakeStore`) or a DuckDB file path; without one,
    ``$WORKBENCH_SOURCE``, else ``$WORKBENCH_DB``, else ``data/workbench.duckdb``."""
    spec = spec or os.environ.get(SOURCE_ENV) or None
    folder = lake_folder(spec)
    if folder is None and spec is not None and (Path(spec) / PREDICTIONS).is_dir():
        folder = Path(spec)  # a folder with predictions/ is a lake (a store is a file): caches key on the path
    return LakeStore(folder) if folder is not None else Store(spec)


def validation_report(store: LakeStore) -> dict[str, Any]:
    """What the ingest would quarantine in the lake, by table and reason (nothing is modified)."""
    with store.connect() as con:
        rows = con.execute(
            "SELECT table_name, reason, count(*) FROM quarantine GROUP BY ALL ORDER BY 1, 3 DESC, 2"
        ).fetchall()
        kept = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (PREDICTIONS, FEEDBACK)}
    by_table: dict[str, dict[str, int]] = {}
    for table, reason, n in rows:
        by_table.setdefault(table, {})[reason] = int(n)
    return {
        "source": f"{LAKE_PREFIX}{store.path}",
        "valid": kept,
        "quarantined": {t: sum(r.values()) for t, r in by_table.items()},
        "reasons": by_table,
    }
