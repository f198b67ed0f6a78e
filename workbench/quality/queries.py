"""The engine side of model quality: binned score counts per label for the reference, each model version of the
window and each chunk over time (:func:`workbench.sources.scores.binned_scores`: a few thousand numbers each,
whatever the stream's size), and each chunk's first timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.core.window import Window
from workbench.sources.chunks import chunk_key
from workbench.sources.scores import binned_scores_many
from workbench.sources.store_queries import filtered_predictions
from workbench.sources.trace_feedback import labels_per_trace


@dataclass(frozen=True)
class QualityAggregates:
    """Binned counts (see :func:`binned_scores`) of the reference, of the window per model version (``group``)
    and of the over-time span per chunk (``group``: its start, or the row block's index with ``starts``)."""

    reference: pd.DataFrame
    versions: pd.DataFrame
    chunks: pd.DataFrame
    starts: pd.DataFrame | None
    label_note: str | None


def quality_aggregates(
    con: Any, reference: Window, window: Window, over_time: Window, chunk: str | int, label_kinds: tuple[str, ...]
) -> QualityAggregates:
    """The report's aggregates over an open Ibis backend (labels: the latest of each trace from ``label_kinds``)."""
    labels, note = labels_per_trace(con, label_kinds)
    keyed = chunk_key(filtered_predictions(con, over_time), chunk)
    reference_bins, versions, chunks = binned_scores_many(
        labels,
        [
            (filtered_predictions(con, reference), None, True),
            (filtered_predictions(con, window), lambda t: t.model_version, False),
            (keyed, lambda t: t.chunk, False),
        ],
    )
    starts = keyed.group_by("chunk").aggregate(start=keyed.ts.min()).execute() if isinstance(chunk, int) else None
    return QualityAggregates(reference_bins, versions, chunks, starts, note)
