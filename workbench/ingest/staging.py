"""The incoming rows as TEMP table ``staging``, with positional column names ``c0, c1, …``.

A file may name its columns anything a CSV header, a Parquet schema or a JSON key can hold: quotes, spaces,
semicolons, SQL keywords, DuckDB's pseudo-column ``rowid``, or the names of the ingest's own working columns
(``__status``, ``__reason``). None of them can reach the SQL of the ingest: the rows are copied under
positional names, the file's names are kept beside them (:class:`Staging`), and every identifier that does
reach SQL is quoted. A file path is read as a literal path (a name like ``glob*.csv`` is not expanded).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from workbench.core.errors import InputError
from workbench.core.files import detect_format
from workbench.ingest.settings import IngestSettings
from workbench.sources.store import literal

GLOB_CHARACTERS = set("*?[]{}")


def q(name: str) -> str:
    """Quote an identifier for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Staging:
    """The staged rows' columns: the file's names in file order, their DuckDB types, and positional names."""

    names: tuple[str, ...]
    types: dict[str, str]

    def ref(self, name: str) -> str:
        """The SQL reference of the file's column ``name`` in ``staging`` (its positional column)."""
        return f"c{self.names.index(name)}"

    def __contains__(self, name: object) -> bool:
        return name in self.types


def _reader_error(path: Path, fmt: str, exc: Exception, max_line: int) -> InputError:
    text = str(exc)
    low = text.lower()
    if "maximum line size" in low:
        found = re.search(r"actual size: ?(\d+)", low)
        size = f" ({int(found.group(1)):,} bytes)" if found else ""
        return InputError(f"{path.name}: a line{size} is longer than the {max_line:,} bytes a CSV line may hold "
                          "(twice [ingest] max_cell_bytes in the settings)")  # fmt: skip
    if "unicode" in low or "utf-8" in low or "utf8" in low or "encoding" in low:
        return InputError(f"{path.name}: not valid UTF-8 text; save the file as UTF-8 and retry")
    if re.search(r"file is empty|empty file|no columns", low):
        return InputError(f"{path.name}: the file is empty")
    if fmt == "parquet":
        return InputError(f"{path.name}: not a readable Parquet file")
    if fmt == "json":
        return InputError(f"{path.name}: not JSON Lines (one JSON object per line)")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return InputError(f"{path.name}: cannot be read as {fmt.upper()}: {first[:160]}")


def _literal_path(path: Path, workdir: Path) -> Path:
    """A path DuckDB's readers take literally: a name holding glob characters is linked under a plain name."""
    if not GLOB_CHARACTERS & set(str(path)):
        return path
    plain = workdir / f"input-{len(list(workdir.iterdir()))}{''.join(path.suffixes[-2:])}"
    try:
        plain.symlink_to(path.resolve())
    except OSError:
        shutil.copyfile(path, plain)
    return plain


def _looks_like_text(path: Path, gzipped: bool) -> bool:
    """Whether the first 8 KiB read as text: no NUL byte (binary formats have them; UTF-8 text never does)."""
    try:
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as stream:
            head = stream.read(8192)
    except (OSError, EOFError):
        return False
    return b"\x00" not in head


def _raw_names(path: Path, fmt: str, reader: str, con: duckdb.DuckDBPyConnection) -> list[str] | None:
    """The column names as the file writes them (before DuckDB renames a repeated one to ``name_1``)."""
    if fmt == "csv":
        header = reader.replace("header = true", "header = false")
        rows = con.execute(f"SELECT * FROM {header} LIMIT 1").fetchall()  # fetchall: leave no open result
        return [str(v) for v in rows[0]] if rows else None
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (OSError, ValueError):  # not Parquet: DuckDB's reader says so next, in the ingest's words
            return None
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.strip():
                try:
                    first = json.loads(line, object_pairs_hook=lambda pairs: [k for k, _ in pairs])
                except ValueError:
                    return None
                return [str(k) for k in first] if isinstance(first, list) else None
    return None


def check_names(names: list[str], source: str) -> None:
    """Refuse a file whose column names repeat, exactly or but for case (DuckDB's names ignore case)."""
    seen: dict[str, str] = {}
    for name in names:
        key = name.casefold()
        if key in seen:
            other = seen[key]
            if other == name:
                raise InputError(f"{source}: column '{name}' appears twice; give each column its own name")
            raise InputError(f"{source}: columns '{other}' and '{name}' differ only in case; rename one")
        seen[key] = name


def _positional(con: duckdb.DuckDBPyConnection, relation: str, source: str, settings: IngestSettings) -> Staging:
    """Read ``relation`` (a reader call or a registered frame) into ``staging`` under positional names, in one
    pass (no intermediate copy of the rows); check the column count and cell sizes."""
    described = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {relation})").fetchall()
    if len(described) > settings.max_columns:
        raise InputError(
            f"{source}: {len(described):,} columns, more than the {settings.max_columns:,} an ingest takes "
            "([ingest] max_columns in the settings)"
        )
    names = [name for name, _ in described]
    check_names(names, source)
    columns = ", ".join(f"{q(name)} AS c{i}" for i, name in enumerate(names))
    con.execute(f"CREATE OR REPLACE TEMP TABLE staging AS SELECT {columns} FROM {relation}")
    staging = Staging(tuple(names), dict(described))
    _check_cell_sizes(con, staging, source, settings.max_cell_bytes)
    return staging


def _check_cell_sizes(con: duckdb.DuckDBPyConnection, staging: Staging, source: str, limit: int) -> None:
    """Refuse a file with a text cell over ``limit`` bytes (one query over every text column)."""
    text = [n for n in staging.names if staging.types[n] == "VARCHAR"]
    if not text:
        return
    sizes = con.execute(
        "SELECT " + ", ".join(f"max(strlen({staging.ref(n)}))" for n in text) + " FROM staging"
    ).fetchall()[0]
    for name, size in zip(text, sizes, strict=True):
        if size is not None and size > limit:
            raise InputError(
                f"{source}: a cell of column '{name}' holds {size:,} bytes, more than the {limit:,} an ingest "
                "takes ([ingest] max_cell_bytes in the settings)"
            )


def load_file(con: duckdb.DuckDBPyConnection, path: Path, workdir: Path, settings: IngestSettings) -> Staging:
    """Load a file into ``staging`` (CSV as text, so nothing is lost); a path is read literally."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: the file is empty")
    fmt, gzipped = detect_format(path)
    if fmt != "parquet" and not _looks_like_text(path, gzipped):
        raise InputError(f"{path.name}: not a text file (a {fmt.upper()} file is text); is it the right file?")
    source = _literal_path(path, workdir)
    if gzipped and fmt == "parquet":
        unzipped = workdir / f"unzipped-{len(list(workdir.iterdir()))}.parquet"
        try:
            with gzip.open(source, "rb") as src, open(unzipped, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, EOFError):
            raise InputError(f"{path.name}: not a readable gzip file") from None
        source = unzipped
    lit = literal(str(source))
    max_line = max(2 * settings.max_cell_bytes, 2_000_000)
    if fmt == "csv":
        delim = ", delim = '\\t'" if ".tsv" in path.name.lower() else ""
        reader = f"read_csv({lit}, all_varchar = true, header = true, max_line_size = {max_line}{delim})"
    elif fmt == "json":
        reader = f"read_json({lit}, format = 'auto', sample_size = -1)"
    else:
        reader = f"read_parquet({lit})"
    try:
        raw = _raw_names(source, fmt, reader, con)
        if raw is not None:
            check_names(raw, path.name)
        return _positional(con, reader, path.name, settings)
    except duckdb.Error as exc:
        raise _reader_error(path, fmt, exc, max_line) from None


def load_frame(con: duckdb.DuckDBPyConnection, frame: Any, source: str, settings: IngestSettings) -> Staging:
    """Load an in-memory pandas DataFrame or Arrow table into ``staging``, like a file."""
    names = [str(c) for c in (frame.columns if hasattr(frame, "columns") else frame.column_names)]
    check_names(names, source)
    con.register("incoming_frame", frame)
    try:
        return _positional(con, "incoming_frame", source, settings)
    finally:
        con.unregister("incoming_frame")
