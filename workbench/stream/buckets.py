"""Time buckets of the stream: their granularities, lengths and labels (shared by queries, results and charts)."""

from __future__ import annotations

import pandas as pd

GRANULARITIES = {"hour": "h", "day": "D", "week": "W"}


BUCKET_LENGTH = {"hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1), "week": pd.Timedelta(weeks=1)}


SEGMENT_NONE = "(all)"


MISSING = "(missing)"


def bucket_label(bucket: pd.Timestamp, granularity: str) -> str:
    """A bucket's start as text: ``2026-03-11`` for days and weeks, ``2026-03-11T14:00Z`` for hours."""
    return bucket.strftime("%Y-%m-%dT%H:%MZ") if granularity == "hour" else bucket.strftime("%Y-%m-%d")
