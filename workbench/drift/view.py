"""Streamlit glue of the Drift page: window presets, cached computations, the statistics table, the recorded run.

Results are cached by the store's path and its *data* version (rows and newest ingest of both
streams), not its modification time: computing drift writes the profile cache and the run record
into the store, which must not invalidate the result it just produced.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from workbench.core.errors import InputError
from workbench.core.window import Window, parse_window
from workbench.drift.compare import DriftResult, compare
from workbench.drift.over_time import DriftOverTime, drift_over_time, estimated_performance
from workbench.sources.store import Store

PRESET_DEFAULT = "Last 7 days vs first 30 days"
PRESET_PREVIOUS = "Last 7 days vs the 30 days before"
PRESET_VERSIONS = "Model version A vs B"
PRESET_CUSTOM = "Custom ranges"
PRESETS = (PRESET_DEFAULT, PRESET_PREVIOUS, PRESET_VERSIONS, PRESET_CUSTOM)


@st.cache_data(show_spinner=False, max_entries=64)
def _version(path: str, mtime: float) -> tuple:
    del mtime
    with Store(path).connect(read_only=True) as con:
        return tuple(
            con.execute(
                "SELECT (SELECT count(*) FROM predictions), (SELECT max(ingest_id) FROM predictions), "
                "(SELECT count(*) FROM feedback), (SELECT max(ingest_id) FROM feedback)"
            ).fetchall()[0]
        )


def data_version(store: Store) -> tuple:
    """Rows and newest ingest id of predictions and feedback: changes only when data is added."""
    from workbench.app.ui import store_mtime

    return _version(str(store.path), store_mtime(store))


def _bounds(summary: Any) -> tuple[dt.datetime, dt.datetime]:
    if not summary.first_ts:
        raise InputError("the store has no predictions")
    return dt.datetime.fromisoformat(summary.first_ts), dt.datetime.fromisoformat(summary.last_ts)


def preset_windows(preset: str, summary: Any, custom: dict[str, Any]) -> tuple[Window, Window]:
    """(reference, current) windows for a preset of the page, within the time range of ``summary`` (the whole store)."""
    bounds = _bounds(summary)
    if preset == PRESET_DEFAULT:  # the first 30 days, cut where the last 7 start when the data is shorter
        reference, current = parse_window("first:30d", None, bounds), parse_window("last:7d", None, bounds)
        return Window(end=min(reference.end, current.start)), current
    if preset == PRESET_PREVIOUS:
        current = parse_window("last:7d", None, bounds)
        return Window(start=current.start - dt.timedelta(days=30), end=current.start), current
    if preset == PRESET_VERSIONS:
        ref_v, cur_v = custom.get("reference_versions") or [], custom.get("current_versions") or []
        if not ref_v or not cur_v:
            raise InputError("pick at least one model version on each side")
        return Window(model_versions=tuple(ref_v)), Window(model_versions=tuple(cur_v))
    return (
        parse_window(custom.get("reference_range"), None, bounds),
        parse_window(custom.get("current_range"), None, bounds),
    )


@st.cache_data(show_spinner=False, max_entries=16)
def cached_compare(
    path: str,
    version: tuple,
    reference: Window,
    current: Window,
    features: tuple[str, ...],
    multivariate: bool,
    _progress: Any = None,
) -> DriftResult:
    """:func:`workbench.drift.compare.compare`, cached per store path, data version and inputs."""
    del version
    say = (lambda message: _progress(label=f"Computing drift: {message}…")) if _progress else None
    return compare(Store(path), reference, current, list(features) or None, multivariate=multivariate, progress=say)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_over_time(
    path: str, version: tuple, reference: Window, chunk: str, window: Window | None, features: tuple, learned: bool
) -> DriftOverTime:
    """:func:`workbench.drift.over_time.drift_over_time`, cached like :func:`cached_compare`."""
    del version
    return drift_over_time(Store(path), reference, chunk, window, list(features) or None, learn_thresholds=learned)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_performance(path: str, version: tuple, reference: Window, chunk: str, window: Window | None) -> Any:
    """:func:`workbench.drift.over_time.estimated_performance`, cached like :func:`cached_compare`."""
    del version
    return estimated_performance(Store(path), reference, chunk, window)


def feature_table(result: DriftResult) -> pd.DataFrame:
    """One row per feature with every statistic side by side (drifted first, then by PSI)."""
    rows = []
    for f in sorted(result.features, key=lambda f: (not f.drift, -(f.psi or 0))):
        rows.append(
            {
                "feature": f.name,
                "type": f.type,
                "drift": f.drift,
                "decided by": f.decided_by,
                "PSI": f.psi,
                "JS distance": f.js_distance,
                "Wasserstein / σ": f.wasserstein,
                "test": f.test,
                "statistic": f.statistic,
                "p-value": f.p_value,
                "p (BH)": f.p_adjusted,
                "KS": f.ks_method,
                "n reference": f.n_reference,
                "n current": f.n_current,
                "missing ref": f.missing_share_reference,
                "missing cur": f.missing_share_current,
                "unseen categories": ", ".join(f.unseen_categories),
            }
        )
    return pd.DataFrame(rows)


IMPLIED_TEST = {"numeric": "ks", "categorical": "chi2"}


def shown_feature_columns(table: pd.DataFrame, rule: str | None) -> list[str]:
    """The columns of :func:`feature_table` the page shows, so it fits without scrolling sideways: "decided by"
    unless every feature was decided by the run's ``rule`` (which the caption above the table says; a verdict
    by the missing share, or "insufficient", keeps the column), "KS" when its method differs between features,
    "test" where one is not the type's usual one (KS numeric, chi² categorical), "unseen categories" when a
    feature has some. The full table stays behind an expander."""
    drop = set()
    if table.empty or (table["decided by"].isna() | (table["decided by"] == rule)).all():
        drop.add("decided by")
    if table.empty or table["KS"].dropna().nunique() <= 1:
        drop.add("KS")
    if table.empty or (table["test"].isna() | (table["test"] == table["type"].map(IMPLIED_TEST))).all():
        drop.add("test")
    if table.empty or not table["unseen categories"].astype(bool).any():
        drop.add("unseen categories")
    return [c for c in table.columns if c not in drop]


def feature_column_config() -> dict[str, Any]:
    """Streamlit formats of :func:`feature_table`: effect sizes and statistics to 4 decimals, p-values in
    scientific notation, missing shares in %, short headers (the full names are the frame's, e.g. in the CSV)."""
    number = st.column_config.NumberColumn
    effect = {c: number(label, format="%.4f") for c, label in
              (("PSI", "PSI"), ("JS distance", "JS"), ("Wasserstein / σ", "W / σ"))}  # fmt: skip
    return {
        **effect,
        "statistic": number(format="%.4f"),
        "unseen categories": st.column_config.TextColumn("unseen", width=110),
        "p-value": number("p", format="%.1e"),
        "p (BH)": number("p (BH)", format="%.1e"),
        "n reference": number("n ref", format="localized"),
        "n current": number("n cur", format="localized"),
        "missing ref": number("NA ref", format="percent", help="Share of missing values in the reference"),
        "missing cur": number("NA cur", format="percent", help="Share of missing values in the current window"),
    }


def record_once(store: Store, result: DriftResult) -> None:
    """Record the run (``record_run(store, "drift", …)``) once per result shown in this session."""
    from workbench.sources.evidence import record_run

    key = (str(store.path), result.reference.get("label"), result.current.get("label"), result.verdict_text)
    done = st.session_state.setdefault("drift_recorded", set())
    if key not in done:
        record_run(store, "drift", result.verdict, result.run_summary())
        done.add(key)
