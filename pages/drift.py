"""Drift: what moved, since when, how much, and does it hurt the model?"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from workbench.app import ui
from workbench.core.window import describe_window
from workbench.drift import charts
from workbench.drift.report import html_report
from workbench.drift.view import (
    PRESET_CUSTOM,
    PRESET_VERSIONS,
    PRESETS,
    cached_compare,
    cached_over_time,
    cached_performance,
    data_version,
    feature_column_config,
    feature_table,
    preset_windows,
    record_once,
    shown_feature_columns,
)

ui.page_header("Drift", "What moved, since when, how much, and does it hurt the model?")

store = ui.require_store()
with ui.user_errors():
    summary = ui.cached_summary(str(store.path), ui.store_mtime(store), None)  # presets span the whole store
if not summary.predictions:
    st.info("The store has no predictions yet.", icon=":material/database:")
    st.stop()
versions = [v["model_version"] for v in summary.model_versions]

# --- What to compare ------------------------------------------------------------------------------------
with st.container(border=True):
    left, right = st.columns([2, 3])
    preset = left.radio("Compare", PRESETS, key="drift_preset", help="The reference is the baseline; the current "
                        "window is what you suspect moved.")  # fmt: skip
    custom = {}
    if preset == PRESET_VERSIONS:
        a, b = right.columns(2)
        custom["reference_versions"] = a.multiselect(
            "Reference versions", versions, default=versions[:1], key="drift_ref_v"
        )
        custom["current_versions"] = b.multiselect(
            "Current versions", versions, default=versions[-1:], key="drift_cur_v"
        )
    elif preset == PRESET_CUSTOM:
        a, b = right.columns(2)
        custom["reference_range"] = a.text_input(
            "Reference (START..END, first:30d, last:7d)", "first:30d", key="drift_ref"
        )
        custom["current_range"] = b.text_input("Current", "last:7d", key="drift_cur")
    with st.expander("Options"):
        o1, o2, o3 = st.columns(3)
        chosen = o1.multiselect("Features", summary.features, placeholder="All features", key="drift_features")
        chunk = o2.selectbox("Over time: chunk by", ["day", "week", "10000 rows"], index=1, key="drift_chunk")
        learned = o2.checkbox("Learn thresholds from the reference's chunks (mean ± 3σ)", key="drift_learned")
        multivariate = o3.checkbox("Multivariate: domain classifier", value=True, key="drift_mv")

with ui.user_errors():
    reference, current = preset_windows(preset, summary, custom)
path, version = str(store.path), data_version(store)
features = tuple(chosen)
with ui.user_errors(), st.status("Computing drift…", expanded=False) as status:
    result = cached_compare(path, version, reference, current, features, multivariate, _progress=status.update)
    status.update(label=f"Drift computed in {result.seconds or 0:.1f} s", state="complete")
record_once(store, result)

# --- Verdict --------------------------------------------------------------------------------------------
s = result.summary
box = st.error if result.verdict == "drift" else (st.warning if result.verdict == "insufficient" else st.success)
box(f"**{result.verdict_text}.**", icon=":material/ssid_chart:")
st.caption(
    f"Reference: {result.reference['label']} ({result.reference['rows']:,} rows) · current: "
    f"{result.current['label']} ({result.current['rows']:,} rows) · verdict by "
    + (
        "PSI ≥ 0.1 (large reference: effect size)"
        if s.get("rule") == "psi"
        else "BH-adjusted p < 0.05 (small reference)"
    )
    + f" · KS {s.get('ks_method')}"
)
m = st.columns(4)
m[0].metric("Features drifted", f"{s['n_drifted']} of {s['n_features']}")
m[1].metric("Share drifted", "n/a" if s["share_drifted"] is None else f"{s['share_drifted']:.0%}",
            help="Dataset drift when at least half of the features drifted.")  # fmt: skip
m[2].metric("Dataset drift", "yes" if s["dataset_drift"] else "no")
mv = result.multivariate or {}
m[3].metric(
    "Domain classifier AUC",
    "n/a" if mv.get("auc") is None else f"{mv['auc']:.3f}",
    help="Can a model tell the windows apart? 0.5: no. Drift when the 95% CI is above 0.5 + margin.",
)

st.plotly_chart(charts.psi_bars_figure(result), width="stretch")
st.subheader("All statistics")
stats_table = feature_table(result)
ui.table(
    stats_table, height=min(35 * (len(result.features) + 1) + 3, 700),
    column_order=shown_feature_columns(stats_table, s.get("rule")), column_config=feature_column_config(),
)  # fmt: skip
with st.expander("All columns: how each verdict was decided, the test, the KS method"):
    ui.table(stats_table, column_config=feature_column_config())
for warning in result.warnings:
    st.caption(f":material/warning: {warning}")

# --- Distributions --------------------------------------------------------------------------------------
st.subheader("Distributions")
names = [f.name for f in sorted(result.features, key=lambda f: (not f.drift, -(f.psi or 0)))]
picked = st.selectbox("Feature", names, key="drift_feature") if names else None
if picked:
    st.plotly_chart(charts.distribution_figure(result.feature(picked)), width="stretch")

# --- Predictions, labels, multivariate -----------------------------------------------------------------
st.subheader("Predictions, labels and the joint distribution")
p = st.columns(3)
pred = (result.prediction_drift or {}).get("positive_rate")
if pred and pred["reference"] is not None and pred["current"] is not None:
    p[0].metric("Predicted-positive rate", f"{pred['current']:.1%}", f"{pred['change'] * 100:+.1f} pp vs reference",
                delta_color="off")  # fmt: skip
score = (result.prediction_drift or {}).get("score")
if score and score.get("psi") is not None:
    p[1].metric("Score PSI", f"{score['psi']:.3f}", "drifted" if score["drift"] else "stable", delta_color="off")
label = result.label_drift
if label and label["reference"] is not None and label["current"] is not None:
    p[2].metric("Label rate (feedback)", f"{label['current']:.1%}", f"{label['change'] * 100:+.1f} pp vs reference",
                delta_color="off", help="Share of positive labels among labelled predictions.")  # fmt: skip
if mv.get("importance"):
    st.plotly_chart(charts.domain_classifier_figure(mv), width="stretch")

# --- Over time ------------------------------------------------------------------------------------------
st.subheader("Over time")
window = ui.active_window()
st.caption(f"Each {chunk} of {describe_window(window)} against the reference ({describe_window(reference)}).")
chunk_spec = chunk.split()[0]
with ui.user_errors(), st.spinner("Drift per chunk…"):
    over = cached_over_time(path, version, reference, chunk_spec, window, features, learned)
st.plotly_chart(charts.heatmap_figure(over), width="stretch")
default_lines = result.drifted[:3] or names[:2]
lines = st.multiselect("Lines for", names, default=default_lines, key="drift_lines")
if lines:
    st.plotly_chart(charts.feature_lines_figure(over, lines), width="stretch")
crossings = [{"feature": f, "first chunk over threshold": (c or "never")[:10],
              "threshold": over.thresholds[f]["upper"], "learned": over.thresholds[f]["learned"]}
             for f, c in over.first_crossing.items()]  # fmt: skip
ui.table(pd.DataFrame(crossings))

st.subheader("Performance")
with ui.user_errors(), st.spinner("Realised and estimated performance…"):
    perf = cached_performance(path, version, reference, chunk_spec, window)
if perf.chunks.empty:
    st.info("No scored predictions in this window.")
else:
    st.plotly_chart(charts.performance_figure(perf), width="stretch")
    cal = perf.calibration
    st.caption(
        f"Estimated accuracy without labels (CBPE) from "
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

# --- Downloads ------------------------------------------------------------------------------------------
st.subheader("Report")
d = st.columns(2)
d[0].download_button(
    "Download drift report (JSON)",
    lambda: json.dumps({**result.to_dict(), "over_time": over.to_dict(), "performance": perf.to_dict()}, indent=2),
    file_name="drift_report.json",
    mime="application/json",
    icon=":material/data_object:",
    on_click="ignore",
)
d[1].download_button(
    "Download drift report (HTML)",
    lambda: html_report(result, over, perf),
    file_name="drift_report.html",
    mime="text/html",
    icon=":material/description:",
    on_click="ignore",
)
