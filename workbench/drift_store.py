"""Drift between two windows of the store: the features from the roles, the reference profile (cached in
the store), and :func:`compare` — one pass over the current window against the profile.

The statistics, the verdict and the result object are :mod:`workbench.drift`'s, shared with the file modes
(:mod:`workbench.drift_files`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.drift import (
    ROLE_COLUMNS,
    DriftResult,
    Progress,
    _compare_tables,
    _domain_classifier,
    _prediction_and_labels,
    _reference_profile,
    _result,
    _side,
    load_settings,
)
from workbench.errors import InputError
from workbench.queries import Window, filtered_predictions
from workbench.queries import drift as q
from workbench.stats.drift import DriftSettings
from workbench.store import Store, stored_roles


def store_features(con: Any, features: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(numeric, categorical) features of the store from its roles; ``features`` narrows (unknown: InputError)."""
    roles = stored_roles(con.con).predictions
    columns = con.table("predictions").schema()
    known = [c for c in (roles.features or []) if c in columns]
    if not roles.features:  # no roles recorded: every column without another role
        known = [c for c in columns if c not in ROLE_COLUMNS and c not in roles.sensitive]
    if features:
        unknown = [f for f in features if f not in columns]
        if unknown:
            raise InputError(f"unknown feature '{unknown[0]}' (features: {', '.join(known)})")
        known = list(features)
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
            q.save_profile(store, self.key, self.profile)


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
    ref_table = q.as_view(filtered_predictions(con, reference), "drift_reference")
    parts = {"reference": _side(reference, 0), "numeric": numeric, "categorical": categorical,
             "grid": settings.ks_grid_bins, "bins": settings.bins, **q.reference_fingerprint(ref_table)}  # fmt: skip
    key = q.profile_key(parts)
    found = q.load_profile(con.con, key) if cached else None
    if found is not None:
        say("reference profile from the cache")
        return ReferenceProfile(found, key, False)
    sizes = q.window_sizes(ref_table, numeric + categorical)
    exact = exact and sizes["rows"] <= settings.ks_exact_max_rows
    profile, values = _reference_profile(ref_table, numeric, categorical, exact, settings, say)
    profile["sizes"] = sizes
    return ReferenceProfile(profile, key, True, values)


def compare(
    store: Store,
    reference: Window | None,
    current: Window | None,
    features: list[str] | None = None,
    settings: DriftSettings | None = None,
    multivariate: bool = True,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> DriftResult:
    """Drift of the store's current window against its reference window (time ranges and/or model versions)."""
    import time

    started = time.perf_counter()
    settings = settings or load_settings()
    say = progress or (lambda _: None)
    with store.ibis() as con:
        numeric, categorical = store_features(con, features)
        ref_table = q.as_view(filtered_predictions(con, reference), "drift_reference")
        cur_table = q.as_view(filtered_predictions(con, current), "drift_current")
        cur_rows = int(cur_table.count().execute())
        exact = cur_rows <= settings.ks_exact_max_rows
        # the score is profiled and counted with the features (one scan), decided on its own
        aside = ("score",) if "score" in ref_table.schema() and "score" not in numeric + categorical else ()
        lookup = reference_profile(con, reference, [*numeric, *aside], categorical, settings, say, exact, use_cache)
        found, summary, profile, warnings, scored = _compare_tables(
            ref_table, cur_table, numeric, categorical, settings, lookup.profile, say, lookup.values, aside
        )
        extras = _prediction_and_labels(con, ref_table, cur_table, settings, say, scored[0] if scored else None)
        mv = None
        if multivariate:
            say("multivariate: domain classifier on a seeded sample")
            mv = _domain_classifier(ref_table, cur_table, numeric, categorical, found, settings)
    if use_cache:
        lookup.save(store)
    ref_side = _side(reference, profile["sizes"]["rows"])
    cur_side = _side(current, cur_rows)
    return _result(found, summary, ref_side, cur_side, warnings + extras.pop("warnings"), extras, mv, settings, started)
