"""The source interface: where an analysis reads predictions, feedback and the roles.

An analysis asks a :class:`Source` for an Ibis backend whose tables are ``predictions`` and ``feedback``
(and the roles that say which columns are features, groups, label, score); it never opens a database
itself. The embedded DuckDB store is one implementation (:class:`StoreSource`), a file read in place is
another (:class:`FileSource`). Engine-specific fast paths (the store's kept per-trace and per-unit sums,
pulled sorted values) are asked of the source through the backend it yields (``sources.trace_feedback``,
``sources.cursors``), so an analysis runs unchanged on any engine that only has the two tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from workbench.core.schema import Roles
from workbench.sources.files import file_table
from workbench.sources.store import Store, stored_roles


@runtime_checkable
class Source(Protocol):
    """Where the data of an analysis lives; ``label`` names it for a person ("store data/w.duckdb")."""

    @property
    def label(self) -> str: ...

    def tables(self) -> AbstractContextManager[Any]:
        """An Ibis backend over a short-lived read-only connection with ``predictions`` (and ``feedback``)."""
        ...

    def roles(self) -> Roles:
        """The column roles recorded with the data (features, categorical, sensitive)."""
        ...


@dataclass(frozen=True)
class StoreSource:
    """The embedded DuckDB store: both streams, the roles, and the ingest's kept sums."""

    store: Store

    @property
    def label(self) -> str:
        return f"store {self.store.path}"

    def tables(self) -> AbstractContextManager[Any]:
        return self.store.ibis()

    def roles(self) -> Roles:
        with self.store.connect(read_only=True) as con:
            return stored_roles(con)


@dataclass(frozen=True)
class FileSource:
    """One CSV, Parquet or JSON Lines file read in place as the ``predictions`` table (no feedback table)."""

    path: Path

    @property
    def label(self) -> str:
        return f"file {self.path.name}"

    @contextmanager
    def _tables(self) -> Iterator[Any]:
        with file_table(self.path) as table:
            backend = table._find_backend()
            backend.create_view("predictions", table, overwrite=True)
            yield backend

    def tables(self) -> AbstractContextManager[Any]:
        return self._tables()

    def roles(self) -> Roles:
        return Roles()
