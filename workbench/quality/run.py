"""The one entry of model quality: ``run(source, request) -> QualityReport``, for the page, the CLI and the notebook.

Reads the store's predictions and feedback (labels: the latest of each trace from the settings' feedback kinds),
asks the engine for binned score counts (:mod:`workbench.quality.queries`), chooses the calibration on the
reference (:func:`workbench.sources.scores.choose_calibration`, the rule drift's performance section uses) and
builds the report (:mod:`workbench.quality.analyse`).
"""

from __future__ import annotations

import time

import pandas as pd

from workbench.core.errors import InputError
from workbench.core.window import describe_window
from workbench.quality.analyse import chunk_rows, compare, components, decide, summarise
from workbench.quality.queries import quality_aggregates
from workbench.quality.request import CONFIDENCE, QualityRequest
from workbench.quality.result import QualityReport
from workbench.sources.base import Source, StoreSource
from workbench.sources.scores import choose_calibration
from workbench.sources.store_queries import store_bounds

__all__ = ["QualityRequest", "run"]


def run(source: Source, request: QualityRequest) -> QualityReport:
    """The model-quality report of ``source`` (a store with feedback) for ``request``."""
    if not isinstance(source, StoreSource):
        raise InputError(f"model quality reads a store with feedback (labels), not {source.label}")
    started = time.perf_counter()
    settings = request.resolved_settings()
    bounds = store_bounds(source.store)
    if bounds is None:
        raise InputError("the store has no predictions")
    reference, window, over_time = request.windows(bounds)
    with source.tables() as con:
        agg = quality_aggregates(con, reference, window, over_time, request.chunk, settings.performance_label_kinds)
    bins, sigmas, min_labels = settings.score_bins, settings.band_sigmas, settings.min_rows
    mapping, calibration = choose_calibration(agg.reference, bins) if not agg.reference.empty else (None, {})
    summary = lambda part: summarise(part, mapping, bins, CONFIDENCE, min_labels)  # noqa: E731
    empty = agg.reference.iloc[0:0]
    ref = summary(agg.reference)
    current = summary(agg.versions if not agg.versions.empty else empty)
    versions = tuple(
        {"model_version": str(version), **summary(part)} for version, part in agg.versions.groupby("group", sort=True)
    )
    errors = components(agg.reference)
    rule = {"min_rows": min_labels, "band_sigmas": sigmas}
    chunks = chunk_rows(agg.chunks, mapping, bins, errors, rule)
    if agg.starts is not None and not chunks.empty:
        chunks["chunk"] = chunks["chunk"].map(dict(zip(agg.starts["chunk"], agg.starts["start"], strict=True)))
    if not chunks.empty:
        chunks["chunk"] = pd.to_datetime(chunks["chunk"], utc=True)
    comparisons = compare(current, ref, errors, sigmas)
    verdict, text, reasons = decide(current, ref, comparisons, min_labels)
    warnings = [agg.label_note] if agg.label_note else []
    if calibration.get("method") == "none" and calibration.get("reason"):
        warnings.append(f"the scores are used as probabilities uncalibrated: {calibration['reason']}")
    warnings += [
        f"{v['model_version']}: {v['labelled']:,} labelled predictions, fewer than {min_labels}: its "
        "metrics are not read"
        for v in versions
        if v["labelled"] < min_labels
    ]
    return QualityReport(
        verdict=verdict,
        verdict_text=text,
        reasons=tuple(reasons),
        window={"label": describe_window(window), **current},
        reference={"label": describe_window(reference), **ref},
        versions=versions,
        comparisons=tuple(comparisons),
        chunks=chunks,
        chunk=str(request.chunk),
        calibration=calibration,
        settings={
            "band_sigmas": sigmas,
            "min_labels": min_labels,
            "label_kinds": list(settings.performance_label_kinds),
            "confidence": CONFIDENCE,
            "calibration_bins": bins,
        },
        warnings=tuple(warnings),
        seconds=time.perf_counter() - started,
    )
