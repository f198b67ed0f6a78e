"""Drift between two windows of the store: the features from the roles, the reference profile (cached in
the store), and :func:`compare` — one pass over the current window against the profile.

The engine pass is :mod:`workbench.drift.engine`'s and the result :mod:`workbench.drift.result`'s, shared with
the file modes (:mod:`workbench.drift.files`).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.drift import profile_cache
from workbench.drift import queries as q
from workbench.drift.classifier import classifier_sample, domain_classifier_result, start_domain_classifier
from workbench.drift.engine import (
    ROLE_COLUMNS,
    Beside,
    Progress,
    compare_with_aside,
    load_settings,
    prediction_and_labels,
    reference_pass,
)
from workbench.drift.request import DriftRequest
from workbench.drift.result import DriftResult, Outcome, build_result, window_side
from workbench.sources import cursors
from workbench.sources.experiment import HIDDEN_PREFIX
from workbench.sources.store import Store, stored_roles
from workbench.sources.store_queries import filtered_predictions
from workbench.stats.drift import DriftSettings


def store_features(con: Any, features: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(numeric, categorical) features of the store from its roles; ``features`` narrows (unknown: InputError)."""
    roles = stored_roles(con.con).predictions
    columns = con.table("predictions").schema()
    known = [c for c in (roles.features or []) if c in columns]
    if not roles.features:  # no roles recorded: every column without another role
        known = [c for c in columns if c not in ROLE_COLUMNS and c not in roles.sensitive
                 and not c.startswith(HIDDEN_PREFIX)]  # fmt: skip
    if features:
        unknown = [f for f in features if f not in columns or f.startswith(HIDDEN_PREFIX)]
        if unknown:
            raise InputError(f"unknown feature '{unknown[0]}' (features: {', '.join(known)})")
        known = list(dict.fromkeys(features))  # a feature named twice is compared once
    categorical = set(roles.categorical or [])
    cat = [f for f in known if f in categorical or not q.is_numeric(columns[f])]
    return [f for f in known if f not in cat], cat


@dataclass(frozen=True)
class ReferenceProfile:
    """A reference window's profile (JSON-ready), its cache key, whether it was just computed, pulled values."""

    profile: dict[str, Any]
    key: str
    fresh: bool
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def save(self, store: Store) -> None:
        """Cache a freshly computed profile in the store (one short write; call with no connection open)."""
        if self.fresh:
            profile_cache.save_profile(store, self.key, self.profile)


def reference_profile(
    con: Any,
    reference: Window | None,
    numeric: list[str],
    categorical: list[str],
    settings: DriftSettings,
    progress: Progress | None = None,
    exact: bool = False,
    cached: bool = True,
) -> ReferenceProfile:
    """The reference window's profile from the store's ``drift_profiles`` cache, else computed.

    The cache key holds the window, the features, the grid and bins, and the reference's row count
    and newest ingest id, so new data in the reference window makes a new profile. With ``exact``
    (and a reference under the KS cap) its sorted values come along in ``values`` (never cached).
    ``con`` is an open Ibis backend on the store; cache a fresh profile with ``.save(store)`` after closing it.
    """
    say = progress or (lambda _: None)
    key, found, rows, ref_table = _lookup(con, reference, numeric, categorical, settings, cached)
    if found is not None:
        say("reference profile from the cache")
        return ReferenceProfile(found, key, False)
    exact = exact and rows <= settings.ks_exact_max_rows and cursors.pulls_values(ref_table)
    profile, values = reference_pass(
        ref_table, numeric, categorical, exact, settings, say, numeric + categorical, rows=rows
    )
    return ReferenceProfile(profile, key, True, values)


def _lookup(
    con: Any,
    reference: Window | None,
    numeric: list[str],
    categorical: list[str],
    settings: DriftSettings,
    cached: bool,
) -> tuple[str, dict[str, Any] | None, int, Any]:
    """(the reference profile's cache key, the cached profile or None, the window's rows, its view)."""
    ref_table = cursors.as_view(filtered_predictions(con, reference), "drift_reference")
    fingerprint = profile_cache.reference_fingerprint(ref_table)
    parts = {"reference": window_side(reference, 0), "numeric": numeric, "categorical": categorical,
             "grid": settings.ks_grid_bins, "bins": settings.bins, **fingerprint}  # fmt: skip
    key = profile_cache.profile_key(parts)
    return key, profile_cache.load_profile(con.con, key) if cached else None, fingerprint["rows"], ref_table


def compare(
    store: Store,
    request: DriftRequest,
    settings: DriftSettings | None = None,
    *,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> DriftResult:
    """Drift of the store's current window against its reference window (time ranges and/or model versions).

    ``request``: its two sides as windows (a side left out is all data), features and the domain classifier;
    ``use_cache``: read and keep the reference's profile in the store's ``drift_profiles``.
    """
    reference, current = request.reference_window, request.current_window
    features, multivariate = request.feature_list, request.multivariate
    started = time.perf_counter()
    settings = settings or load_settings()
    say = progress or (lambda _: None)
    values: dict[str, np.ndarray] = {}
    # 1. the reference's profile (cached, else computed with the domain classifier's sample of the reference) on
    # a connection of its own: the blocks DuckDB read for it leave the engine's cache when it closes, before the
    # current window's are read (together, with the quantiles' values, they made a first run's peak memory).
    # A cached profile read nothing big: the current window then runs on the same connection.
    with store.ibis() as con, ExitStack() as stack, ThreadPoolExecutor(max_workers=1) as pool:
        numeric, categorical = store_features(con, features)
        # the score is profiled and counted with the features (one scan), decided on its own
        columns = con.table("predictions").schema()
        aside = ("score",) if "score" in columns and "score" not in numeric + categorical else ()
        key, cached, ref_rows, ref_table = _lookup(con, reference, [*numeric, *aside], categorical, settings, use_cache)
        cur_table = cursors.as_view(filtered_predictions(con, current), "drift_current")
        cur_rows = int(cur_table.count().execute())
        # the reference's label counts are kept with its profile while the feedback has not changed (a store only)
        labels_key = _labels_key(con, settings) if use_cache and not store.read_only else None
        known = _known_labels(cached, labels_key)
        window = _Window(reference, current, numeric, categorical, aside, (ref_rows, cur_rows), settings, say, known)
        if cached is not None:
            say("reference profile from the cache")
            outcome = window.against(con, ref_table, cur_table, cached, values, multivariate)
        else:
            if multivariate:  # beside the quantiles: it reads the same blocks
                sampled = Beside(stack, pool).submit(classifier_sample, ref_table, numeric + categorical, settings)
            exact = max(ref_rows, cur_rows) <= settings.ks_exact_max_rows and cursors.pulls_values(ref_table)
            fresh, values = reference_pass(
                ref_table, [*numeric, *aside], categorical, exact, settings, say, [*numeric, *aside, *categorical],
                rows=ref_rows,
            )  # fmt: skip
            if multivariate:
                fresh["classifier_sample"] = _sample_entry(sampled.result(), numeric + categorical, settings)
    if cached is None:
        if use_cache:  # one short write, with no connection open
            profile_cache.save_profile(store, key, fresh)
        # 2. the current window against the profile, on a fresh connection
        with store.ibis() as con:
            ref_table = cursors.as_view(filtered_predictions(con, reference), "drift_reference")
            cur_table = cursors.as_view(filtered_predictions(con, current), "drift_current")
            outcome = window.against(con, ref_table, cur_table, fresh, values, multivariate)
    found, summary, profile, warnings, extras, mv = outcome
    counts = extras.pop("reference_labels", None)
    if labels_key is not None and counts is not None and _known_labels(profile, labels_key) != tuple(counts):
        profile_cache.save_profile(store, key, {**profile, "labels": {"key": labels_key, "counts": list(counts)}})
    ref_side = window_side(reference, profile["sizes"]["rows"])
    cur_side = window_side(current, cur_rows)
    passed = Outcome(found, summary, warnings + extras.pop("warnings"), extras, mv)
    return build_result(passed, ref_side, cur_side, settings, started)


def _labels_key(con: Any, settings: DriftSettings) -> dict[str, Any]:
    """What the reference's label counts depend on besides its rows: the feedback's rows and newest ingest id,
    and the label kinds counted."""
    return {"feedback": profile_cache.reference_fingerprint(con.table("feedback")),
            "kinds": list(settings.performance_label_kinds)}  # fmt: skip


def _known_labels(profile: dict[str, Any] | None, labels_key: dict[str, Any] | None) -> tuple[int, int] | None:
    """The profile's kept reference label counts (labelled traces, positives) when kept under ``labels_key``."""
    entry = (profile or {}).get("labels")
    if labels_key is None or not isinstance(entry, dict) or entry.get("key") != labels_key:
        return None
    counts = entry.get("counts")
    return (int(counts[0]), int(counts[1])) if isinstance(counts, list) and len(counts) == 2 else None


def _sample_entry(frame: Any, columns: list[str], settings: DriftSettings) -> dict[str, Any]:
    """The domain classifier's reference sample as kept in the profile: what it was drawn with, and its rows."""
    return {"columns": columns, "rows": settings.domain_classifier_rows, "seed": settings.seed,
            "arrow": profile_cache.pack_frame(frame)}  # fmt: skip


def _cached_sample(profile: dict[str, Any], columns: list[str], settings: DriftSettings) -> Any:
    """The profile's reference sample when it was drawn with these columns and settings, else None."""
    entry = profile.get("classifier_sample")
    if not isinstance(entry, dict) or not isinstance(entry.get("arrow"), str):
        return None
    if (entry.get("columns"), entry.get("rows"), entry.get("seed")) != (
        columns, settings.domain_classifier_rows, settings.seed
    ):  # fmt: skip
        return None
    frame = profile_cache.unpack_frame(entry["arrow"])
    return frame if list(frame.columns) == columns else None


@dataclass(frozen=True)
class _Window:
    """What :func:`compare` needs to run the current window against a reference profile."""

    reference: Window | None
    current: Window | None
    numeric: list[str]
    categorical: list[str]
    aside: tuple[str, ...]
    rows: tuple[int, int]
    settings: DriftSettings
    say: Progress
    reference_labels: tuple[int, int] | None = None  # kept with the profile (see compare)

    def against(
        self, con: Any, ref_table: Any, cur_table: Any, profile: dict[str, Any], values: dict, multivariate: bool
    ) -> tuple[list[Any], dict[str, Any], dict[str, Any], list[str], dict[str, Any], dict[str, Any] | None]:
        """(features, summary, profile, warnings, prediction/label drift, domain classifier) of the current window."""
        numeric, categorical, settings, say = self.numeric, self.categorical, self.settings, self.say
        with ExitStack() as stack, ThreadPoolExecutor(max_workers=1) as pool:
            early: list[Future | None] = [None]

            def classify() -> None:  # on every feature, beside the statistics; used when each has a verdict
                say("multivariate: domain classifier on a seeded sample (beside the statistics)")
                ref_sample = _cached_sample(profile, numeric + categorical, settings)
                early[0] = start_domain_classifier(
                    stack, pool, ref_table, cur_table, numeric, categorical, settings, ref_sample
                )

            found, summary, profile, warnings, scored = compare_with_aside(
                ref_table, cur_table, numeric, categorical, settings, profile, say, values, self.aside, self.rows,
                classify if multivariate else None,
            )  # fmt: skip
            extras = prediction_and_labels(con, ref_table, cur_table, settings, say, scored[0] if scored else None,
                                           self.reference_labels)  # fmt: skip
            mv = (
                domain_classifier_result(ref_table, cur_table, numeric, categorical, found, settings, early[0])
                if multivariate
                else None
            )
        return found, summary, profile, warnings, extras, mv
