"""Feedback stream: volumes, rates, accuracy, coverage and label delay over time; signal quality; retraining
triggers evaluated now and backtested; a live mode that refreshes while `workbench simulate` writes."""

from __future__ import annotations

import time

import streamlit as st

from workbench.app import registry, ui
from workbench.stream import view
from workbench.stream.queries import split_options
from workbench.stream.request import CheckRequest
from workbench.stream.snapshot import stream_settings

ui.page_header(
    "Feedback stream",
    "What the feedback says over time, how final the recent numbers are, and when a rule says retrain.",
)
view.render_contents()

store = ui.require_store()
settings = stream_settings()
with ui.user_errors():
    summary = ui.summary()
    types, default_types = view.cached_label_sources(str(store.path), ui.store_mtime(store))

# --- What to look at (outside the live fragment: a refresh keeps every choice) -------------------------------
cols = st.columns([1.6, 1.3, 1.3, 1.6, 0.8])
granularity = cols[0].segmented_control(
    "Granularity", ["hour", "day", "week"], default="day", key="stream_granularity", required=True
)
splits = split_options(summary.sensitive, summary.categorical)
split = cols[1].selectbox("Split by", list(splits), key="stream_split", help="Model version, arm or a segment.")
positive = cols[2].radio("Positive feedback", list(view.POSITIVE_RATES), key="stream_positive", horizontal=True)
label_types = cols[3].multiselect(
    "Labels from",
    types,
    default=[t for t in default_types if t in types],
    key="stream_labels",
    help="Feedback types whose labels count for accuracy and coverage. Corrections are filed mostly against "
    "wrong predictions, so accuracy from them is biased down; automated outcomes are the default.",
)
live = cols[4].toggle(
    "Live",
    key="stream_live",
    help=f"Refresh the numbers every {settings.live_refresh_seconds:g} s (run `workbench simulate` to feed the store).",
)

with st.expander("Retraining rules", expanded=False, icon=":material/rule:"):
    uploaded = st.file_uploader("Rules file (TOML)", type=["toml"], key="stream_rules_file",
                                help="Default: rules.example.toml. See the README for every key.")  # fmt: skip
    base_text, rules_source = view.rules_text(uploaded)
    # Editable so thresholds can be tuned against the backtest below; a new upload starts a fresh text.
    rules_text = st.text_area(
        f"Rules ({rules_source}; edit to tune, Ctrl+Enter to apply)",
        base_text,
        height=320,
        key=f"stream_rules_text_{rules_source}",
    )
    st.download_button("Download these rules", rules_text, file_name=rules_source, mime="application/toml",
                       icon=":material/download:", key="stream_rules_download", on_click="ignore")  # fmt: skip


@st.fragment(run_every=settings.live_refresh_seconds if live else None)
def stream_view() -> None:
    """The data part of the page: re-run on its own in live mode, reading a fresh snapshot each time."""
    window = ui.active_window()
    path, mtime = str(store.path), ui.store_mtime(store)
    with ui.user_errors():
        shown = (window, granularity, splits[split], tuple(label_types))
        snapshot = view.cached_snapshot(path, mtime, shown, settings)
        request = CheckRequest(rules_text=rules_text, source=rules_source, window=window)
    if snapshot.empty:
        st.info("No predictions in the selected window.", icon=":material/filter_alt_off:")
        return
    result, rules_error = view.cached_check(path, view.rules_version(mtime, live, settings), request)

    if live:
        view.live_caption(snapshot, time.strftime("%H:%M:%S"))
    view.render_totals(snapshot, positive, view.label_sources_text(tuple(label_types), types))
    view.render_triggers(store, result, rules_error, (rules_text, window))
    view.render_over_time(snapshot, result, positive)
    view.render_finality(snapshot, result)
    view.render_quality(snapshot)
    view.render_backtest(result)


stream_view()
registry.render_facts(registry.store_versions())  # the registered versions' facts (MLflow on)
