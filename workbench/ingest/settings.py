"""Limits and plausibility rules of the ingest: ``[ingest]`` of the settings file."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.core.settings import load_section


@dataclass(frozen=True)
class IngestSettings:
    """What one ingest accepts: columns per file, bytes per cell, and the plausible time range of ``ts``.

    ``earliest_ts``: the earliest plausible ``ts`` (ISO date, UTC); ``latest_ts_ahead_days``: how far past now a
    ``ts`` may lie (clock skew). A ``ts`` outside is quarantined with its reason, as is a UTC offset beyond ±14:00
    (no time zone has one) and a word DuckDB would read as a time (``epoch``, ``infinity``, ``today``).
    """

    max_columns: int = 5000
    max_cell_bytes: int = 1_000_000
    earliest_ts: str = "2000-01-01"
    latest_ts_ahead_days: float = 1.0


def load_settings() -> IngestSettings:
    """The ingest's settings: defaults overridden by ``[ingest]`` of settings.toml / $WORKBENCH_SETTINGS."""
    return load_section(IngestSettings, "ingest")
