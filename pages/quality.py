"""Model quality: how good is the model once labels arrive, and what do the scores say before they do?"""

from __future__ import annotations

import streamlit as st

from workbench.app import registry, ui
from workbench.quality import view
from workbench.quality.view import METRIC_NAMES, METRICS

ui.page_header(
    "Model quality",
    "Confusion matrix, accuracy, precision, recall, F1, ROC and PR AUC with their curves and calibration per model "
    "version, held to a reference; and every metric estimated without labels (CBPE) beside the realised one.",
)

store = ui.require_store()
with ui.user_errors():
    summary = ui.summary()
if not summary.predictions:
    st.info("The store has no predictions yet.", icon=":material/database:")
    st.stop()

with st.container(border=True):
    c1, c2, c3, c4 = st.columns([1.6, 1.6, 1, 1.2])
    window = c1.text_input(
        "Window (START..END, last:30d, all)",
        view.DEFAULT_WINDOW,
        key="quality_window",
        help="The labelled predictions the verdict reads; the sidebar's model versions apply.",
    )
    reference = c2.text_input(
        "Reference",
        view.DEFAULT_REFERENCE,
        key="quality_reference",
        help="What the window is held to; the calibration of the estimates is fitted here.",
    )
    chunk = c3.radio("Over time by", ["week", "day"], horizontal=True, key="quality_chunk")
    metric = c4.selectbox(
        "Over-time metric", METRICS, index=METRICS.index("f1"), format_func=METRIC_NAMES.get, key="quality_metric"
    )

with ui.user_errors():
    request = view.request_from(window, reference, chunk, ui.active_window())
    with st.spinner("Model quality…"):
        report = view.cached_report(str(store.path), ui.store_mtime(store), request)
    view.record(store, report, request)

view.verdict_section(report)
view.versions_section(report)
registry.render_facts(registry.store_versions())  # the registered versions' facts (MLflow on)
view.over_time_section(report, metric)
view.downloads(report)
