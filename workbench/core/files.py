"""File formats the workbench reads: CSV/TSV, Parquet and JSON Lines, each optionally gzipped."""

from __future__ import annotations

from pathlib import Path

from workbench.core.errors import InputError

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
}


def detect_format(path: Path) -> tuple[str, bool]:
    """Return (format, gzipped) from the file name: csv, parquet or json (JSON Lines)."""
    name = path.name.lower()
    gzipped = name.endswith(".gz")
    stem = name[:-3] if gzipped else name
    suffix = Path(stem).suffix
    if suffix not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise InputError(f"{path.name}: unknown file type '{suffix or stem}' (known: {known}, each optionally .gz)")
    return FORMATS[suffix], gzipped
