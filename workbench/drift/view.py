"""Streamlit glue of the Drift page: window presets, cached runs, the statistics table, the recorded run, and the
page's sections drawn from a result (verdict, statistics, distributions, predictions, over time, performance,
downloads), so ``pages/drift.py`` only gathers the controls and calls these.

Results are cached by the store's path and its *data* version (rows and newest ingest of both
streams), not its modification time: computing drift writes the profile cache and the run record
into the store, which must not invalidate the result it just produced.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd
import streamlit as st

from workbench.app import ui
from workbench.app.ui import store_mtime
from workbench.core.errors import InputError
from workbench.core.window import Window, describe_window, parse_window
from workbench.drift import charts
from workbench.drift.engine import load_settings
from workbench.drift.over_time import DriftOverTime, PerformanceOverTime, drift_over_time, estimated_performance
from workbench.drift.reconstruction import reconstruction_caption
from workbench.drift.report import html_report
from workbench.drift.request import DriftRequest, OverTimeRequest
from workbench.drift.result import DriftResult
from workbench.drift.run import run
from workbench.ingest.lake import open_store
from workbench.sources.base import StoreSource
from workbench.sources.evidence import record_once
from workbench.sources.store import Store
from workbench.stats.drift import DriftSettings

__all__ = ["DriftRequest", "load_settings"]  # the page builds its request and reads the settings from here

PRESET_DEFAULT = "Last 7 days vs first 30 days"
PRESET_PREVIOUS = "Last 7 days vs the 30 days before"
PRESET_VERSIONS = "Model version A vs B"
PRESET_CUSTOM = "Custom ranges"
PRESETS = (PRESET_DEFAULT, PRESET_PREVIOUS, PRESET_VERSIONS, PRESET_CUSTOM)


@st.cache_data(show_spinner=False, max_entries=64)
def _version(path: str, mtime: float) -> tuple:
    del mtime
    with open_store(path).connect(read_only=True) as con:
        return tuple(
            con.execute(
                "SELECT (SELECT count(*) FROM predictions), (SELECT max(ingest_id) FROM predictions), "
                "(SELECT count(*) FROM feedback), (SELECT max(ingest_id) FROM feedback)"
            ).fetchall()[0]
        )


def data_version(store: Store) -> tuple:
    """Rows and newest ingest id of predictions and feedback: changes only when data is added."""
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
def _cached_run(path: str, version: tuple, request: DriftRequest, _progress: Any = None) -> DriftResult:
    del version
    say = (lambda message: _progress(label=f"Computing drift: {message}…")) if _progress else None
    return run(StoreSource(open_store(path)), request, progress=say)


def cached_run(store: Store, request: DriftRequest, progress: Any = None) -> DriftResult:
    """:func:`workbench.drift.run.run` on the store, cached per store path, data version and request.

    ``progress``: a status element's ``update`` (it is shown "Computing drift: …" as the run goes).
    """
    return _cached_run(str(store.path), data_version(store), request, _progress=progress)


@st.cache_data(show_spinner=False, max_entries=16)
def _cached_over_time(
    path: str, version: tuple, reference: Window, chunk: str, window: Window | None, features: tuple, learned: bool
) -> DriftOverTime:
    del version
    return drift_over_time(open_store(path), OverTimeRequest(reference, chunk, window, features, learned))


@st.cache_data(show_spinner=False, max_entries=16)
def _cached_performance(path: str, version: tuple, reference: Window, chunk: str, window: Window | None) -> Any:
    del version
    return estimated_performance(open_store(path), reference, chunk, window)


def record(store: Store, result: DriftResult) -> None:
    """Record the result for the retrain gate once per store, windows and verdict shown in this session."""
    seen = st.session_state.setdefault("recorded", set())
    record_once(store, result, seen, (result.reference.get("label"), result.current.get("label"), result.verdict_text))


def feature_table(result: DriftResult) -> pd.DataFrame:
    """One row per feature with every statistic side by side (in :attr:`DriftResult.ordered`), the page's headers."""
    frame = result.to_frame()
    frame["unseen_categories"] = frame["unseen_categories"].map(", ".join)
    return frame[list(FEATURE_COLUMNS)].rename(columns=FEATURE_COLUMNS)


FEATURE_COLUMNS = {
    "name": "feature", "type": "type", "drift": "drift", "decided_by": "decided by", "psi": "PSI",
    "js_distance": "JS distance", "wasserstein": "Wasserstein / σ", "test": "test", "statistic": "statistic",
    "p_value": "p-value", "p_adjusted": "p (BH)", "ks_method": "KS", "n_reference": "n reference",
    "n_current": "n current", "missing_share_reference": "missing ref", "missing_share_current": "missing cur",
    "unseen_categories": "unseen categories",
}  # fmt: skip


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


def column_help(settings: dict[str, Any] | None = None) -> dict[str, str]:
    """What each column of :func:`feature_table` measures and, where one applies, the threshold it is held to
    (read from ``settings``, the result's drift settings; the defaults otherwise): the headers' ``help``."""
    s = settings or {}
    psi, alpha, small = s.get("psi_threshold", 0.1), s.get("p_value", 0.05), s.get("small_reference_rows", 1000)
    return {
        "drift": f"Drifted by the run's rule: PSI ≥ {psi:g} (reference above {small:,} rows) or BH-adjusted p < "
        f"{alpha:g} (smaller reference), or a change in the missing share",
        "decided by": "Which rule decided this feature: psi, p_value (BH-adjusted), missing (the share of missing "
        "values changed) or insufficient (too few values)",
        "PSI": f"Population stability index on the reference's deciles (categories for a categorical feature); "
        f"drift at ≥ {psi:g} under the PSI rule",
        "JS distance": "Jensen–Shannon distance of the binned distributions, 0 (same) to 1 (disjoint); shown, not "
        "a rule",
        "Wasserstein / σ": "W/σ: Wasserstein distance (earth mover's: how far the values moved) divided by the "
        "reference's standard deviation; shown, not a rule",
        "test": "The test behind the p-value: ks (Kolmogorov–Smirnov, numeric) or chi2 (chi-square, categorical)",
        "statistic": "The test's statistic: KS D (the largest gap between the two empirical CDFs) or chi-square",
        "p-value": "The test's p-value before the multiple-testing correction",
        "p (BH)": f"The p-value adjusted over the features by Benjamini–Hochberg (false discovery rate); drift at "
        f"< {alpha:g} under the p-value rule",
        "KS": "How the KS test was computed: exact (from the sorted values of both windows) or grid (from counts "
        "on a fine grid when the windows are too large to pull; D within a stated bound)",
        "n reference": "Non-missing values in the reference window",
        "n current": "Non-missing values in the current window",
        "missing ref": "Share of missing values in the reference",
        "missing cur": "Share of missing values in the current window",
        "unseen categories": "Categories in the current window that the reference never had",
    }


def feature_column_config(settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Streamlit formats of :func:`feature_table` with each header's :func:`column_help`: effect sizes and
    statistics to 4 decimals, p-values in scientific notation, missing shares in %, short headers (the full names
    are the frame's, e.g. in the CSV)."""
    helps, number, text = column_help(settings), st.column_config.NumberColumn, st.column_config.TextColumn
    formats = {
        "drift": st.column_config.CheckboxColumn(), "decided by": text(), "test": text(), "KS": text(),
        "PSI": number("PSI", format="%.4f"), "JS distance": number("JS", format="%.4f"),
        "Wasserstein / σ": number("W / σ", format="%.4f"), "statistic": number(format="%.4f"),
        "unseen categories": text("unseen", width=110), "p-value": number("p", format="%.1e"),
        "p (BH)": number("p (BH)", format="%.1e"), "n reference": number("n ref", format="localized"),
        "n current": number("n cur", format="localized"), "missing ref": number("NA ref", format="percent"),
        "missing cur": number("NA cur", format="percent"),
    }  # fmt: skip
    return {name: {**column, "help": helps[name]} for name, column in formats.items()}


def rule_caption(result: DriftResult) -> str:
    """The caption under the verdict: both windows, the rule that decided (with its threshold), the KS method."""
    s, settings = result.summary, result.settings
    if s.get("rule") == "psi":
        rule = f"PSI ≥ {settings.get('psi_threshold', 0.1):g} (large reference: effect size)"
    else:
        rule = f"BH-adjusted p < {settings.get('p_value', 0.05):g} (small reference)"
    return (
        f"Reference: {result.reference['label']} ({result.reference['rows']:,} rows) · current: "
        f"{result.current['label']} ({result.current['rows']:,} rows) · verdict by {rule} · KS {s.get('ks_method')}"
    )


def verdict_box(result: DriftResult) -> Any:
    """The box of the dataset verdict: red for drift, amber when some features drifted below the dataset rule
    (or nothing could be judged), green when no feature drifted; its words are the verdict's, whatever the colour."""
    if result.verdict == "drift":
        return st.error
    return st.warning if result.verdict == "insufficient" or result.summary.get("n_drifted") else st.success


def render_verdict(result: DriftResult) -> None:
    """The verdict box, the caption of the rule, the four headline metrics and the PSI bars."""
    box = verdict_box(result)
    box(f"**{result.verdict_text}.**", icon=":material/ssid_chart:")
    st.caption(rule_caption(result))
    s, share = result.summary, result.settings.get("dataset_drift_share", 0.5)
    m = st.columns(4)
    m[0].metric("Features drifted", f"{s['n_drifted']} of {s['n_features']}")
    m[1].metric("Share drifted", "n/a" if s["share_drifted"] is None else f"{s['share_drifted']:.0%}",
                help=f"Dataset drift when at least {share:.0%} of the features drifted.")  # fmt: skip
    m[2].metric("Dataset drift", "yes" if s["dataset_drift"] else "no",
                help=f"The verdict: yes when at least {share:.0%} of the features drifted.")  # fmt: skip
    mv = result.multivariate or {}
    margin = result.settings.get("domain_classifier_margin", 0.05)
    m[3].metric(
        "Domain classifier AUC",
        "n/a" if mv.get("auc") is None else f"{mv['auc']:.3f}",
        help=f"Can a model tell the windows apart? 0.5: no. Drift when the 95% CI is above {0.5 + margin:g}.",
    )
    st.plotly_chart(charts.psi_bars_figure(result), width="stretch")


def render_statistics(result: DriftResult) -> None:
    """Every statistic per feature: the columns that fit first, all of them behind an expander; the warnings."""
    st.subheader("All statistics")
    table = feature_table(result)
    ui.table(
        table, height=min(35 * (len(result.features) + 1) + 3, 700),
        column_order=shown_feature_columns(table, result.summary.get("rule")),
        column_config=feature_column_config(result.settings),
    )  # fmt: skip
    with st.expander("All columns: how each verdict was decided, the test, the KS method"):
        ui.table(table, column_config=feature_column_config(result.settings))
    for warning in result.warnings:
        st.caption(f":material/warning: {warning}")


def render_distributions(result: DriftResult) -> None:
    """A feature picker (in :attr:`DriftResult.ordered`) and its reference vs current distribution."""
    st.subheader("Distributions")
    names = [f.name for f in result.ordered]
    picked = st.selectbox("Feature", names, key="drift_feature") if names else None
    if picked:
        st.plotly_chart(charts.distribution_figure(result.feature(picked)), width="stretch")


def render_predictions(result: DriftResult) -> None:
    """Predicted-positive rate, score PSI and label rate."""
    st.subheader("Predictions and labels")
    p = st.columns(3)
    pred = (result.prediction_drift or {}).get("positive_rate")
    if pred and pred["reference"] is not None and pred["current"] is not None:
        p[0].metric("Predicted-positive rate", f"{pred['current']:.1%}",
                    f"{pred['change'] * 100:+.1f} pp vs reference", delta_color="off")  # fmt: skip
    score = (result.prediction_drift or {}).get("score")
    if score and score.get("psi") is not None:
        p[1].metric("Score PSI", f"{score['psi']:.3f}", "drifted" if score["drift"] else "stable", delta_color="off")
    label = result.label_drift
    if label and label["reference"] is not None and label["current"] is not None:
        p[2].metric("Label rate (feedback)", f"{label['current']:.1%}", f"{label['change'] * 100:+.1f} pp vs reference",
                    delta_color="off", help="Share of positive labels among labelled predictions.")  # fmt: skip


def render_multivariate(result: DriftResult) -> None:
    """The multivariate section: its verdict and reasons, the PCA reconstruction error per chunk with its band,
    the domain classifier's features, the features' and pairs' parts of the change, the top pair's 2-D density."""
    st.subheader("Multivariate drift")
    rc, mv = result.reconstruction, result.multivariate or {}
    if rc is None:
        st.caption("The PCA reconstruction runs on windows of the store with the multivariate option on.")
    else:
        box = st.error if rc["verdict"] == "drift" else st.warning if rc["verdict"] == "insufficient" else st.success
        box(f"**{rc['verdict_text']}.**", icon=":material/hub:")
        st.markdown("\n".join(f"- {reason}" for reason in rc["reasons"]))
        if rc["sample_rows"]:
            st.caption(reconstruction_caption(rc))
        if rc["chunks"]:
            st.plotly_chart(charts.reconstruction_figure(rc), width="stretch")
    left, right = st.columns(2)
    if mv.get("importance"):
        left.plotly_chart(charts.domain_classifier_figure(mv), width="stretch")
    if rc and rc["pair_contributions"]:
        right.plotly_chart(charts.reconstruction_parts_figure(rc), width="stretch")
        st.plotly_chart(charts.pair_density_figure(rc), width="stretch")
        if rc["explanation"] and rc["explanation"] not in rc["verdict_text"]:  # the verdict says it when it alarms
            st.caption(f"Why the error changed: {rc['explanation']}.")
    if rc and rc.get("warning"):
        st.caption(f":material/warning: {rc['warning']}")


def render_over_time(
    store: Store, result: DriftResult, request: DriftRequest, chunk: str, learned: bool
) -> DriftOverTime:
    """Each chunk of the sidebar's window against the request's reference: the heatmap, lines, first crossings."""
    st.subheader("Over time")
    window, reference = ui.active_window(), request.reference_window
    st.caption(f"Each {chunk} of {describe_window(window)} against the reference ({describe_window(reference)}).")
    with ui.user_errors(), st.spinner("Drift per chunk…"):
        over = _cached_over_time(
            str(store.path), data_version(store), reference, chunk.split()[0], window, request.features, learned
        )
    st.plotly_chart(charts.heatmap_figure(over), width="stretch")
    names = [f.name for f in result.ordered]
    lines = st.multiselect("Lines for", names, default=result.drifted[:3] or names[:2], key="drift_lines")
    if lines:
        st.plotly_chart(charts.feature_lines_figure(over, lines), width="stretch")
    crossings = [{"feature": f, "first chunk over threshold": (c or "never")[:10],
                  "threshold": over.thresholds[f]["upper"], "learned": over.thresholds[f]["learned"]}
                 for f, c in over.first_crossing.items()]  # fmt: skip
    ui.table(pd.DataFrame(crossings))
    return over


def render_performance(store: Store, reference: Window, chunk: str) -> PerformanceOverTime:
    """Realised and estimated (CBPE) accuracy per chunk, the calibration used, and where the two part."""
    st.subheader("Performance")
    with ui.user_errors(), st.spinner("Realised and estimated performance…"):
        perf = _cached_performance(
            str(store.path), data_version(store), reference, chunk.split()[0], ui.active_window()
        )
    if perf.chunks.empty:
        st.info("No scored predictions in this window.")
        return perf
    st.plotly_chart(charts.performance_figure(perf), width="stretch")
    cal = perf.calibration
    st.caption(
        "Estimated accuracy without labels (CBPE, confidence-based performance estimation: the accuracy the "
        "calibrated scores imply, averaged over the chunk's predictions) from "
        f"{'isotonic-calibrated' if cal.get('method') == 'isotonic' else 'raw'} scores"
        + (f" (calibration error {cal['ece_raw']:.3f} → {cal['ece_isotonic']:.3f})" if cal.get("ece_raw") else "")
        + f". {perf.assumption}"
    )
    outside = perf.chunks[perf.chunks["within_band"].eq(False)]
    if not outside.empty:
        first = str(outside["chunk"].iloc[0])[:10]
        st.warning(
            f"From {first} the realised accuracy leaves the estimate's band: the features alone no longer explain "
            "the model's performance — likely concept drift, which the estimate cannot see.",
            icon=":material/warning:",
        )
    return perf


def render_downloads(result: DriftResult, over: DriftOverTime, perf: PerformanceOverTime) -> None:
    """The drift report as JSON and as the standalone HTML file."""
    st.subheader("Report")
    d = st.columns(2)
    d[0].download_button(
        "Download drift report (JSON)",
        lambda: json.dumps({**result.to_dict(), "over_time": over.to_dict(), "performance": perf.to_dict()}, indent=2),
        file_name="drift_report.json", mime="application/json", icon=":material/data_object:", on_click="ignore",
    )  # fmt: skip
    d[1].download_button(
        "Download drift report (HTML)", lambda: html_report(result, over, perf), file_name="drift_report.html",
        mime="text/html", icon=":material/description:", on_click="ignore",
    )  # fmt: skip


def settings() -> DriftSettings:
    """The drift settings (``[drift]`` of settings.toml), for the page's labels."""
    return load_settings()
