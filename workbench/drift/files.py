"""Drift with files: a reference file (e.g. the training set) against another file or a window of the store.

Types are inferred by DuckDB from the file; ``categorical`` forces columns to be compared as
categories. The statistics are those of :func:`workbench.drift.engine.compare_tables`, each side
aggregated by its own engine connection (a file in memory, the store read-only).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from workbench.core.errors import InputError
from workbench.drift import queries as q
from workbench.drift.classifier import domain_classifier_result, start_domain_classifier
from workbench.drift.engine import (
    ROLE_COLUMNS,
    Progress,
    compare_tables,
    current_rows,
    load_settings,
    prediction_and_labels,
)
from workbench.drift.request import DriftRequest
from workbench.drift.result import DriftResult, Outcome, build_result, window_side
from workbench.drift.store import store_features
from workbench.sources.files import file_table
from workbench.sources.store import Store
from workbench.sources.store_queries import filtered_predictions
from workbench.stats.drift import DriftSettings


def file_features(
    ref_table: Any, cur_table: Any, features: list[str] | None, categorical: list[str] | None
) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns common to both files; types inferred, ``categorical`` forced, roles left out."""
    ref_schema, cur_schema = ref_table.schema(), cur_table.schema()
    common = [c for c in ref_schema if c in cur_schema]
    forced = set(categorical or [])
    for name in [*(features or []), *forced]:
        if name not in common:
            raise InputError(f"column '{name}' is not in both files (common columns: {', '.join(common) or 'none'})")
    chosen = list(dict.fromkeys(features)) if features else [c for c in common if c not in ROLE_COLUMNS]
    usable = []
    for c in chosen:
        dtype = ref_schema[c]
        if dtype.is_temporal() or dtype.is_nested():
            continue  # timestamps and lists are not features to compare
        usable.append(c)
    if not usable:
        raise InputError("no feature columns to compare (pass --features a,b)")
    cat = [c for c in usable if c in forced or not (q.is_numeric(ref_schema[c]) and q.is_numeric(cur_schema[c]))]
    return [c for c in usable if c not in cat], cat


def schema_notes(ref_table: Any, cur_table: Any, numeric: list[str], categorical: list[str], chosen: bool) -> list[str]:
    """What the comparison of two files left out or changed, in words (a schema change is drift a user must see).

    Columns in one file only (unless the user ``chosen`` the features), timestamp and list columns, and
    features numeric on one side and text on the other (compared as categories). Role columns are not features.
    """
    ref_schema, cur_schema = ref_table.schema(), cur_table.schema()
    notes = []
    if not chosen:
        for label, mine, other in (("reference", ref_schema, cur_schema), ("current", cur_schema, ref_schema)):
            alone = [c for c in mine if c not in other and c not in ROLE_COLUMNS]
            if alone:
                notes.append(f"in the {label} file only, not compared: {', '.join(alone)}")
        compared = {*numeric, *categorical, *ROLE_COLUMNS}
        skipped = [c for c in ref_schema if c in cur_schema and c not in compared]
        if skipped:
            notes.append(f"not compared (timestamps or lists): {', '.join(skipped)}")
    mixed = [c for c in categorical if q.is_numeric(ref_schema[c]) != q.is_numeric(cur_schema[c])]
    if mixed:
        notes.append(f"numeric in one file and text in the other, compared as categories: {', '.join(mixed)}")
    return notes


def compare_files(
    request: DriftRequest, settings: DriftSettings | None = None, *, progress: Progress | None = None
) -> DriftResult:
    """Drift between two files (CSV, Parquet, JSON Lines; types inferred, the request's ``categorical`` forced).

    ``request``: its two sides as file paths, the features (default: the columns common to both files).
    """
    started = time.perf_counter()
    settings = settings or load_settings()
    say = progress or (lambda _: None)
    reference_file, current_file = request.reference, request.current
    features, categorical, multivariate = request.feature_list, list(request.categorical), request.multivariate
    with file_table(reference_file) as ref_table, file_table(current_file) as cur_table:
        numeric, cat = file_features(ref_table, cur_table, features, categorical)
        notes = schema_notes(ref_table, cur_table, numeric, cat, bool(features))
        found, summary, profile, warnings, extras, mv = _compare(
            ref_table, cur_table, numeric, cat, settings, multivariate, say
        )
    ref_side = {"label": Path(reference_file).name, "rows": profile["sizes"]["rows"], "source": str(reference_file)}
    cur_side = {"label": Path(current_file).name, "rows": current_rows(found), "source": str(current_file)}
    warnings = notes + warnings + extras.pop("warnings")
    return build_result(Outcome(found, summary, warnings, extras, mv), ref_side, cur_side, settings, started)


def _compare(
    ref_table: Any,
    cur_table: Any,
    numeric: list[str],
    cat: list[str],
    settings: DriftSettings,
    multivariate: bool,
    say: Progress,
) -> tuple[list[Any], dict[str, Any], dict[str, Any], list[str], dict[str, Any], dict[str, Any] | None]:
    """Per-feature statistics, prediction/label drift and (optionally) the domain classifier of two open tables."""
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=1) as pool:
        early = None
        if multivariate:  # on every feature, beside the statistics; used when each feature has a verdict
            say("multivariate: domain classifier on a seeded sample (beside the statistics)")
            early = start_domain_classifier(stack, pool, ref_table, cur_table, numeric, cat, settings)
        found, summary, profile, warnings = compare_tables(ref_table, cur_table, numeric, cat, settings, None, say)
        extras = prediction_and_labels(None, ref_table, cur_table, settings, say)
        mv = (
            domain_classifier_result(ref_table, cur_table, numeric, cat, found, settings, early)
            if multivariate
            else None
        )
    return found, summary, profile, warnings, extras, mv


def compare_file_to_window(
    store: Store, request: DriftRequest, settings: DriftSettings | None = None, *, progress: Progress | None = None
) -> DriftResult:
    """Drift of a window of the store against a reference file (e.g. the model's training set).

    ``request``: the reference a file, the current a window. Features: the store's feature roles that the file
    also has (or the request's ``features``); a feature is categorical when the store's roles say so, when the
    request's ``categorical`` forces it, or when either side is not numeric. Label drift needs feedback on both
    sides and is left out.
    """
    started = time.perf_counter()
    settings = settings or load_settings()
    say = progress or (lambda _: None)
    reference_file, current = request.reference, request.current_window
    features, categorical, multivariate = request.feature_list, list(request.categorical), request.multivariate
    with file_table(reference_file) as ref_table, store.ibis() as con:
        cur_table = filtered_predictions(con, current)
        store_numeric, store_categorical = store_features(con, features)
        in_file = set(ref_table.schema())
        chosen = [f for f in store_numeric + store_categorical if f in in_file]
        if not chosen:
            raise InputError(
                f"{Path(reference_file).name} has none of the store's features "
                f"({', '.join(store_numeric + store_categorical)})"
            )
        absent = [f for f in store_numeric + store_categorical if f not in in_file]
        name = Path(reference_file).name
        notes = [f"store features not in {name}, not compared: {', '.join(absent)}"] if absent else []
        forced = [*(categorical or []), *(f for f in store_categorical if f in chosen)]
        numeric, cat = file_features(ref_table, cur_table, chosen, forced)
        found, summary, profile, warnings, extras, mv = _compare(
            ref_table, cur_table, numeric, cat, settings, multivariate, say
        )
    ref_side = {"label": Path(reference_file).name, "rows": profile["sizes"]["rows"], "source": str(reference_file)}
    cur_side = window_side(current, current_rows(found))
    warnings = notes + warnings + extras.pop("warnings")
    return build_result(Outcome(found, summary, warnings, extras, mv), ref_side, cur_side, settings, started)
