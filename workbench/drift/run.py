"""The one entry of the drift analysis: ``run(source, request) -> DriftResult``, for the page, the CLI and notebooks.

The request's sides pick the mode: two store windows (:func:`workbench.drift.store.compare`, and drift and
performance over time when asked), two files (:func:`workbench.drift.files.compare_files`; the source is not
read) or a reference file against a store window (:func:`workbench.drift.files.compare_file_to_window`).
"""

from __future__ import annotations

from dataclasses import replace

from workbench.core.errors import InputError
from workbench.drift.engine import Progress, load_settings
from workbench.drift.files import compare_file_to_window, compare_files
from workbench.drift.over_time import drift_over_time, estimated_performance
from workbench.drift.reconstruction import with_reconstruction
from workbench.drift.request import FILE_TO_WINDOW, FILES, DriftRequest, OverTimeRequest
from workbench.drift.result import DriftResult
from workbench.drift.store import compare
from workbench.sources.base import Source, StoreSource
from workbench.stats.drift import DriftSettings


def run(
    source: Source | None,
    request: DriftRequest,
    settings: DriftSettings | None = None,
    *,
    progress: Progress | None = None,
) -> DriftResult:
    """The drift of ``request``'s current side against its reference (see :class:`DriftRequest` for the modes).

    ``source``: the store (:class:`~workbench.sources.base.StoreSource`) for store windows; two files need none.
    With ``request.over_time`` the result carries drift over time and the estimated performance by that chunk;
    with ``request.multivariate`` (store windows) the PCA reconstruction error per chunk and its explanation.
    """
    settings = settings or load_settings()
    if request.mode == FILES:
        return compare_files(request, settings, progress=progress)
    if not isinstance(source, StoreSource):
        label = source.label if source is not None else "no source"
        raise InputError(f"a window of the store needs a store, not {label}")
    if request.mode == FILE_TO_WINDOW:
        return compare_file_to_window(source.store, request, settings, progress=progress)
    result = compare(source.store, request, settings, progress=progress)
    if request.multivariate:
        if progress is not None:
            progress(f"multivariate: PCA reconstruction error by {request.chunk_spec}")
        result = with_reconstruction(source.store, request, result, settings)
    if request.over_time is None:
        return result
    if progress is not None:
        progress(f"over time by {request.over_time}")
    store, reference = source.store, request.reference_window
    over_request = OverTimeRequest(reference, request.over_time, features=tuple(request.feature_list or ()))
    over = drift_over_time(store, over_request, settings)
    performance = estimated_performance(store, reference, request.over_time, None, settings)
    return replace(result, over_time=over, performance=performance)
