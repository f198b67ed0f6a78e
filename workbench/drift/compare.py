"""Drift analysis, the lower-level functions: reference vs current as store windows or files → a DriftResult.

The one entry for the page, the CLI and a notebook is :func:`workbench.drift.run.run` with a
:class:`~workbench.drift.request.DriftRequest`; the functions here are what it dispatches to, gathered in one
place: :func:`compare` (two windows of the store, :mod:`workbench.drift.store`), :func:`compare_files` and
:func:`compare_file_to_window` (:mod:`workbench.drift.files`), :func:`compare_tables` (two open Ibis tables,
:mod:`workbench.drift.engine`). The result is :class:`~workbench.drift.result.DriftResult`. Drift over time and
the estimated performance live in :mod:`workbench.drift.over_time`; the standalone HTML report in
:mod:`workbench.drift.report`; the domain classifier's samples and scheduling in :mod:`workbench.drift.classifier`.
"""

from __future__ import annotations

from workbench.drift.engine import compare_tables, load_settings
from workbench.drift.files import compare_file_to_window, compare_files, file_features
from workbench.drift.request import DriftRequest
from workbench.drift.result import DriftResult, verdict_sentence
from workbench.drift.store import ReferenceProfile, compare, reference_profile, store_features

__all__ = [
    "DriftRequest", "DriftResult", "ReferenceProfile", "compare", "compare_file_to_window", "compare_files",
    "compare_tables", "file_features", "load_settings", "reference_profile", "store_features", "verdict_sentence",
]  # fmt: skip
