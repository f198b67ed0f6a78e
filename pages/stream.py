"""Feedback stream: volumes, rates, accuracy, coverage and label delay over time; signal quality; retraining
triggers evaluated now and backtested; a live mode that refreshes while `workbench simulate` writes."""

from __future__ import annotations

import time

import streamlit as st

from workbench.app import ui
from workbench.core.errors import WorkbenchError
from workbench.core.window import Window
from workbench.sources.evidence import record_run
from workbench.sources.store import Store
from workbench.stream import charts
from workbench.stream.queries import default_label_types, label_sources_from, split_options
from workbench.stream.snapshot import StreamSettings, StreamSnapshot, stream_settings, stream_snapshot
from workbench.stream.trigger_results import CheckResult, backtest_table
from workbench.stream.triggers import EXAMPLE_RULES, check, parse

ui.page_header(
    "Feedback stream",
    "What the feedback says over time, how final the recent numbers are, and when a rule says retrain.",
)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_label_sources(path: str, mtime: float) -> tuple[list[str], tuple[str, ...]]:
    """Feedback types that carry labels, and the default choice; cached per store version."""
    del mtime
    with Store(path).ibis() as con:
        sources = label_sources_from(con)
    return sorted(sources["type"]), default_label_types(sources)


@st.cache_data(show_spinner="Reading the stream…", max_entries=16)
def cached_snapshot(
    path: str, mtime: float, window: Window | None, granularity: str, segment: str | None,
    label_types: tuple[str, ...], settings: StreamSettings,
) -> StreamSnapshot:  # fmt: skip
    """The stream under the filters, from one read of the store; cached per store version and inputs."""
    del mtime
    return stream_snapshot(Store(path), window, granularity, segment, label_types, settings)


@st.cache_data(show_spinner="Evaluating the rules…", max_entries=16)
def cached_check(
    path: str, mtime: float, window: Window | None, rules_text: str, source: str
) -> tuple[CheckResult | None, str | None]:
    """(the rules evaluated now and over history, None) or (None, the one-line error); cached like the snapshot."""
    del mtime
    try:
        return check(Store(path), parse(rules_text, source), window), None
    except WorkbenchError as exc:  # a bad rule, or the store busy past the retry (a long write)
        return None, str(exc)


store = ui.require_store()
settings = stream_settings()
with ui.user_errors():
    summary = ui.summary()
    sources = cached_label_sources(str(store.path), ui.store_mtime(store))

# --- What to look at (outside the live fragment: a refresh keeps every choice) -------------------------------
cols = st.columns([1.6, 1.3, 1.3, 1.6, 0.8])
granularity = cols[0].segmented_control(
    "Granularity", ["hour", "day", "week"], default="day", key="stream_granularity", required=True
)
splits = split_options(summary.sensitive, summary.categorical)
split = cols[1].selectbox("Split by", list(splits), key="stream_split", help="Model version, arm or a segment.")
positive = cols[2].radio("Positive feedback", ["thumbs-up", "click-through"], key="stream_positive", horizontal=True)
types, default_types = sources
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
    if uploaded is not None:
        base_text, rules_source = uploaded.getvalue().decode("utf-8", errors="replace"), uploaded.name
    else:
        base_text, rules_source = EXAMPLE_RULES.read_text(encoding="utf-8"), EXAMPLE_RULES.name
    # Editable so thresholds can be tuned against the backtest below; a new upload starts a fresh text.
    rules_text = st.text_area(
        f"Rules ({rules_source}; edit to tune, Ctrl+Enter to apply)",
        base_text,
        height=320,
        key=f"stream_rules_text_{rules_source}",
    )
    st.download_button("Download these rules", rules_text, file_name=rules_source, mime="application/toml",
                       icon=":material/download:", key="stream_rules_download", on_click="ignore")  # fmt: skip


def record_once(result: CheckResult, window: Window | None, rules_text: str) -> None:
    """Record the triggers run for the retrain gate once per decision shown in this session: a new rules
    text, window or set of fired rules records again; a live refresh that changes nothing does not."""
    key = (str(store.path), rules_text, window, tuple(result.fired_names()), result.fired)
    done = st.session_state.setdefault("stream_recorded", set())
    if key in done:
        return
    try:
        record_run(store, "triggers", *result.evidence())
    except WorkbenchError as exc:  # a writer (simulate) holds the store: record on a later refresh
        st.caption(f"Not recorded for the retrain gate yet: {exc}")
        return
    done.add(key)
    st.caption("Recorded for the retrain gate (its Triggers evidence).")


@st.fragment(run_every=settings.live_refresh_seconds if live else None)
def stream_view() -> None:
    """The data part of the page: re-run on its own in live mode, reading a fresh snapshot each time."""
    window = ui.active_window()
    path, mtime = str(store.path), ui.store_mtime(store)
    with ui.user_errors():
        snapshot = cached_snapshot(path, mtime, window, granularity, splits[split], tuple(label_types), settings)
    if snapshot.empty:
        st.info("No predictions in the selected window.", icon=":material/filter_alt_off:")
        return
    # Live: every refresh reads new rows, but the rules run whole analyses (drift, CBPE); re-evaluate them
    # once per live_rules_seconds of store changes instead of on every batch.
    rules_version = mtime // settings.live_rules_seconds * settings.live_rules_seconds if live else mtime
    result, rules_error = cached_check(path, rules_version, window, rules_text, rules_source)

    if live:
        st.caption(f"Live: refreshed {time.strftime('%H:%M:%S')}, stream as of {snapshot.as_of:%Y-%m-%d %H:%M:%S} UTC.")
    st.markdown(snapshot.verdict())
    totals = snapshot.totals
    metrics = st.columns(6)
    metrics[0].metric("Predictions", f"{totals['predictions']:,}")
    metrics[1].metric("Feedback rows", f"{totals['feedback']:,}", help="On the selected predictions, any kind.")
    metrics[2].metric("With any feedback", f"{totals['coverage_any']:.1%}")
    metrics[3].metric("Labelled", f"{totals['coverage_labelled']:.1%}", help="By the chosen label sources.")
    metrics[4].metric("Online accuracy", "n/a" if totals["accuracy"] is None else f"{totals['accuracy']:.3f}",
                      help="Over the whole window, on the chosen label sources.")  # fmt: skip
    rate, k = ("thumbs_up_rate", "thumbs") if positive == "thumbs-up" else ("click_through_rate", "clicks")
    metrics[5].metric(positive.capitalize() + " rate", "n/a" if totals[rate] is None else f"{totals[rate]:.1%}",
                      help=f"On {totals[k]:,} feedback rows.")  # fmt: skip

    st.subheader("Triggers")
    if rules_error:
        st.error(rules_error, icon=":material/error:")
    elif result is not None:
        (st.error if result.fired else st.success)(result.verdict_text(), icon=":material/notifications:")
        ui.table(result.table())
        record_once(result, window, rules_text)

    st.subheader("Over time")
    by = st.radio("Feedback arriving by", ["kind", "type"], horizontal=True, key="stream_arrivals_by")
    left, right = st.columns(2)
    left.plotly_chart(charts.volume_figure(snapshot, result), width="stretch", key="chart_volume")
    right.plotly_chart(charts.arrivals_figure(snapshot, by, result), width="stretch", key="chart_arrivals")
    left, right = st.columns(2)
    left.plotly_chart(charts.rate_figure(snapshot, "accuracy", result), width="stretch", key="chart_accuracy")
    right.plotly_chart(charts.rate_figure(snapshot, rate, result), width="stretch", key="chart_positive")

    st.subheader("How final are the numbers")
    left, right = st.columns(2)
    left.plotly_chart(charts.coverage_figure(snapshot, result), width="stretch", key="chart_coverage")
    right.plotly_chart(charts.delay_figure(snapshot), width="stretch", key="chart_delay")
    arrived = snapshot.delays.arrived_within.set_index("days")["share"]
    marks = [d for d in (1, 3, 7, 14, 30) if d in arrived.index]
    st.caption(
        "Share of labels arrived N days after the prediction: "
        + ", ".join(f"{d} d: {arrived[d]:.0%}" for d in marks)
        + ("." if not snapshot.delays.censored else " (censored: too few old predictions, delays are underestimated).")
    )

    st.subheader("Signal quality")
    quality = snapshot.quality.totals
    q = st.columns(5)
    q[0].metric("Quarantined rows", f"{quality['quarantined']:,}", help="Rejected at ingest (whole store).")
    q[1].metric("Duplicates dropped", f"{quality['duplicates_at_ingest']:,}", help="Identical rows not stored again.")
    q[2].metric(
        "Conflicting labels", f"{quality['conflicting_label_traces']:,}", help="Predictions with opposite labels."
    )
    q[3].metric(
        "Repeated feedback",
        f"{quality['repeated_feedback_traces']:,}",
        help="Same feedback type twice on a prediction.",
    )
    q[4].metric("Orphan feedback", f"{quality['orphan_feedback']:,}", help="No prediction in the store yet.")
    st.plotly_chart(charts.quality_figure(snapshot), width="stretch", key="chart_quality")

    if result is not None:
        st.subheader("Trigger backtest")
        st.plotly_chart(charts.backtest_figure(result), width="stretch", key="chart_backtest")
        episodes = backtest_table(result)
        if episodes:
            ui.table(episodes)
        else:
            st.caption("No rule fired anywhere in the window.")
        with st.expander("Every bucket each rule fired in"):
            for item in [*result.rules, *result.groups]:
                st.markdown(f"**{item.name}**: {', '.join(item.fired_buckets) or 'never'}")


stream_view()
