"""The feedback stream page's Streamlit glue: cached reads of the store (per store version) and the sections
the page renders (totals, triggers, charts over time, label finality, signal quality, backtest).

The page (``pages/stream.py``) builds the controls and calls these; no formula or query lives here either:
numbers come from :class:`workbench.stream.snapshot.StreamSnapshot` and :class:`workbench.stream.triggers.CheckResult`.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench.app import ui
from workbench.core.errors import WorkbenchError
from workbench.ingest.lake import open_store
from workbench.sources.evidence import record_once
from workbench.sources.store import Store
from workbench.stream import charts
from workbench.stream.queries import default_label_types, label_sources_from
from workbench.stream.request import CheckRequest
from workbench.stream.snapshot import StreamSettings, StreamSnapshot, stream_snapshot
from workbench.stream.trigger_results import CheckResult, backtest_table
from workbench.stream.triggers import EXAMPLE_RULES, run

# The positive-feedback choice of the page → (rate column of the snapshot, its trials column).
POSITIVE_RATES = {"thumbs-up": ("thumbs_up_rate", "thumbs"), "click-through": ("click_through_rate", "clicks")}

# The page's sections in order: anchor → header. The table of contents at the top links to each anchor
# (the page is about 5,000 px long).
SECTIONS = {
    "triggers": "Triggers",
    "over-time": "Over time",
    "label-delay": "How final are the numbers",
    "signal-quality": "Signal quality",
    "trigger-backtest": "Trigger backtest",
}

# What each column of the triggers table means (st.column_config help: shown on hovering the header).
TRIGGER_COLUMNS = {
    "rule": st.column_config.TextColumn("rule", width="medium", help="The rule's or group's name in the rules file."),
    "what": st.column_config.TextColumn(
        "what",
        width="medium",
        help="The metric, the comparison it must pass, per which bucket and for how many "
        "consecutive buckets (a group: all or any of its members).",
    ),
    "value now": st.column_config.TextColumn(
        "value now",
        width="medium",
        help="The metric in the newest judged bucket; '— (why)' when no bucket could be judged yet; "
        "'error' when the rule could not be evaluated on this data (see the error column).",
    ),
    "n": st.column_config.NumberColumn(
        "n", width="small", format="localized", help="Labels or events behind the value (min_n applies to this number)."
    ),
    "driven by": st.column_config.TextColumn(
        "driven by",
        width="large",
        help="What drives the value: the features with the largest PSI (drift), or "
        "the group whose rate is furthest from the reference group's (fairness).",
    ),
    "bucket": st.column_config.TextColumn(
        "bucket",
        width="small",
        help="The newest judged bucket: complete, its labels settled, with at least min_n labels or events.",
    ),
    "fires": st.column_config.CheckboxColumn(
        "fires",
        width="small",
        help="Fires now: ticked yes, empty no, '—' undecided (a rule in error, or a group that depends on "
        "one and cannot be decided without it).",
    ),
    "since": st.column_config.TextColumn(
        "since",
        width="small",
        help="The first bucket of the current unbroken run of fired buckets (empty when it does not fire).",
    ),
    "pending": st.column_config.NumberColumn(
        "pending",
        width="small",
        help="Newer buckets not judged yet: still running, labels still arriving (labels_settled), or "
        "fewer than min_n labels or events. The value now is from the bucket before them.",
    ),
    "error": st.column_config.TextColumn(
        "error",
        width="medium",
        help="Why the rule could not be evaluated on this data (e.g. a column the store does "
        "not have); the other rules are evaluated and decide without it.",
    ),
}
# "driven by" right after the value it explains, so it is on screen rather than scrolled off to the right
TRIGGER_ORDER = ("rule", "what", "value now", "driven by", "n", "bucket", "fires", "since", "pending", "error")
BACKTEST_COLUMNS = {
    "rule": st.column_config.TextColumn("rule", help="The rule's or group's name in the rules file."),
    "metric": st.column_config.TextColumn("metric", help="The rule's metric, or 'group (all/any)'."),
    "first": st.column_config.TextColumn("first", help="The first bucket of this run of consecutive fired buckets."),
    "last": st.column_config.TextColumn("last", help="The last bucket of the run."),
    "buckets": st.column_config.NumberColumn("buckets", help="How many consecutive buckets the run lasted."),
    "fires now": st.column_config.CheckboxColumn("fires now", help="This run is still going: the rule fires now."),
}


@st.cache_data(show_spinner=False, max_entries=16)
def cached_label_sources(path: str, mtime: float) -> tuple[list[str], tuple[str, ...]]:
    """Feedback types that carry labels, and the default choice; cached per store version."""
    del mtime
    with open_store(path).ibis() as con:
        sources = label_sources_from(con)
    return sorted(sources["type"]), default_label_types(sources)


@st.cache_data(show_spinner="Reading the stream…", max_entries=16)
def cached_snapshot(path: str, mtime: float, view: tuple[Any, ...], settings: StreamSettings) -> StreamSnapshot:
    """The stream under ``view`` = (window, granularity, segment, label types), from one read of the store;
    cached per store version and inputs."""
    del mtime
    window, granularity, segment, label_types = view
    return stream_snapshot(open_store(path), window, granularity, segment, label_types, settings)


@st.cache_data(show_spinner="Evaluating the rules…", max_entries=16)
def cached_check(path: str, mtime: float, request: CheckRequest) -> tuple[CheckResult | None, str | None]:
    """(the rules evaluated now and over history, None) or (None, the one-line error); cached like the snapshot."""
    del mtime
    try:
        return run(open_store(path), request), None
    except WorkbenchError as exc:  # a bad rule, or the store busy past the retry (a long write)
        return None, str(exc)


def rules_text(uploaded: Any) -> tuple[str, str]:
    """(the rules text to start editing from, its name): the uploaded rules file, else rules.example.toml."""
    if uploaded is not None:
        return uploaded.getvalue().decode("utf-8", errors="replace"), uploaded.name
    return EXAMPLE_RULES.read_text(encoding="utf-8"), EXAMPLE_RULES.name


def rules_version(mtime: float, live: bool, settings: StreamSettings) -> float:
    """The store version the rules are evaluated at: in live mode once per ``live_rules_seconds`` of store
    changes (the rules run whole analyses: drift, CBPE), else on every change."""
    return mtime // settings.live_rules_seconds * settings.live_rules_seconds if live else mtime


def record(store: Store, result: CheckResult, context: tuple[Any, ...]) -> None:
    """Record the check for the retrain gate once per decision shown in this session (a new rules text, window
    or verdict records again); a writer holding the store defers it to a later refresh, said in a caption."""
    seen = st.session_state.setdefault("stream_recorded", set())
    try:
        recorded = record_once(store, result, seen, (*context, tuple(result.fired_names())))
    except WorkbenchError as exc:  # a writer (simulate) holds the store: record on a later refresh
        st.caption(f"Not recorded for the retrain gate yet: {exc}")
        return
    if recorded:
        st.caption("Recorded for the retrain gate (its Triggers evidence).")


def render_contents() -> None:
    """The table of contents: one link per section (the page is long)."""
    st.markdown(" · ".join(f"[{title}](#{anchor})" for anchor, title in SECTIONS.items()))


def section(anchor: str) -> None:
    """A section's header with its anchor (the target of the table of contents' link)."""
    st.subheader(SECTIONS[anchor], anchor=anchor)


def label_sources_text(label_types: tuple[str, ...], types: list[str]) -> str:
    """The chosen label sources in a few words: "outcome", "any type" (none chosen, or every one)."""
    chosen = [t for t in types if t in label_types]
    return "any type" if not label_types or len(chosen) == len(types) else ", ".join(label_types)


def render_totals(snapshot: StreamSnapshot, positive: str, sources: str) -> None:
    """The verdict sentence and the six headline numbers of the window, each saying what it counts
    (``sources``: the chosen label sources in words, see :func:`label_sources_text`)."""
    st.markdown(snapshot.verdict())
    totals = snapshot.totals
    orphans = snapshot.quality.totals["orphan_feedback"]
    metrics = st.columns(6)
    metrics[0].metric("Predictions", f"{totals['predictions']:,}")
    metrics[1].metric(
        "Feedback rows",
        f"{totals['feedback']:,}",
        help=f"Feedback on the selected predictions, any kind. Not counted: {orphans:,} orphan feedback rows (their "
        "prediction is not in the store yet, see Signal quality); Home counts them too, so over the whole store "
        "Home's total = this + the orphans.",
    )
    metrics[2].metric(
        "With any feedback",
        f"{totals['coverage_any']:.1%}",
        help="Share of predictions with at least one feedback row.",
    )
    metrics[3].metric(
        f"Labelled ({sources})",
        f"{totals['coverage_labelled']:.1%}",
        help="Share of predictions with a label from the sources chosen under 'Labels from'. Home counts a label "
        "of any type, so it is higher when other types (e.g. corrections) label more predictions.",
    )
    accuracy = "n/a" if totals["accuracy"] is None else f"{totals['accuracy']:.3f}"
    metrics[4].metric(
        "Online accuracy", accuracy, help=f"Over the whole window, on labels from: {sources} ({totals['labels']:,})."
    )
    rate, k = POSITIVE_RATES[positive]
    value = "n/a" if totals[rate] is None else f"{totals[rate]:.1%}"
    metrics[5].metric(positive.capitalize() + " rate", value, help=f"On {totals[k]:,} feedback rows.")


def render_triggers(
    store: Store, result: CheckResult | None, error: str | None, context: tuple[Any, ...]
) -> None:  # fmt: skip
    """The check's verdict, its table of rules and groups, and its record for the retrain gate. A rule that
    could not be evaluated shows its reason in its row (and in a warning); the others still show and decide."""
    section("triggers")
    if error:  # the rules text itself is wrong (a bad key, a bad line): nothing could be evaluated
        st.error(error, icon=":material/error:")
    elif result is not None:
        box = st.error if result.fired else st.warning if result.undecided else st.success
        box(result.verdict_text, icon=":material/notifications:")
        for item in result.errors:
            st.warning(f"Rule {item['rule']} (line {item['line']}): {item['error']}", icon=":material/error:")
        ui.table(result.to_frame(), column_config=TRIGGER_COLUMNS, column_order=TRIGGER_ORDER)
        record(store, result, context)


def render_over_time(snapshot: StreamSnapshot, result: CheckResult | None, positive: str) -> None:
    """Volume, feedback arrivals, accuracy and the positive-feedback rate per bucket; without any feedback, the
    volume and one line saying so (no empty feedback charts)."""
    section("over-time")
    if not snapshot.totals["feedback"]:
        st.plotly_chart(charts.volume_figure(snapshot, result), width="stretch", key="chart_volume")
        st.info(no_feedback(snapshot), icon=":material/hourglass_empty:")
        return
    by = st.radio("Feedback arriving by", ["kind", "type"], horizontal=True, key="stream_arrivals_by")
    left, right = st.columns(2)
    left.plotly_chart(charts.volume_figure(snapshot, result), width="stretch", key="chart_volume")
    right.plotly_chart(charts.arrivals_figure(snapshot, by, result), width="stretch", key="chart_arrivals")
    left, right = st.columns(2)
    left.plotly_chart(charts.rate_figure(snapshot, "accuracy", result), width="stretch", key="chart_accuracy")
    rate = POSITIVE_RATES[positive][0]
    right.plotly_chart(charts.rate_figure(snapshot, rate, result), width="stretch", key="chart_positive")


def render_finality(snapshot: StreamSnapshot, result: CheckResult | None) -> None:
    """Coverage and the label delay: how far the recent numbers will still move (nothing to show without
    feedback: one line says so)."""
    section("label-delay")
    if not snapshot.totals["feedback"]:
        st.info(no_feedback(snapshot), icon=":material/hourglass_empty:")
        return
    left, right = st.columns(2)
    left.plotly_chart(charts.coverage_figure(snapshot, result), width="stretch", key="chart_coverage")
    right.plotly_chart(charts.delay_figure(snapshot), width="stretch", key="chart_delay")
    if not snapshot.delays.labels:
        st.caption("No labels from the chosen sources yet: no label delay to measure.")
        return
    arrived = snapshot.delays.arrived_within.set_index("days")["share"].dropna()
    marks = [d for d in (1, 3, 7, 14, 30) if d in arrived.index]
    st.caption(
        "Share of labels arrived N days after the prediction: "
        + ", ".join(f"{d} d: {arrived[d]:.0%}" for d in marks)
        + ("." if not snapshot.delays.censored else " (censored: too few old predictions, delays are underestimated).")
    )


def render_quality(snapshot: StreamSnapshot) -> None:
    """Quarantine, duplicates, conflicting and repeated feedback, orphans: the signal's cleanliness."""
    section("signal-quality")
    quality = snapshot.quality.totals
    q = st.columns(5)
    q[0].metric("Quarantined rows", f"{quality['quarantined']:,}", help="Rejected at ingest (whole store).")
    q[1].metric("Duplicates dropped", f"{quality['duplicates_at_ingest']:,}", help="Identical rows not stored again.")
    q[2].metric(
        "Conflicting labels", f"{quality['conflicting_label_traces']:,}", help="Predictions with opposite labels."
    )
    repeated = f"{quality['repeated_feedback_traces']:,}"
    q[3].metric("Repeated feedback", repeated, help="Same feedback type twice on a prediction.")
    q[4].metric(
        "Orphan feedback",
        f"{quality['orphan_feedback']:,}",
        help="Feedback rows whose prediction is not in the store yet (whole store): they join when it arrives. "
        "Home's Feedback rows count them; this page's Feedback rows do not.",
    )
    st.plotly_chart(charts.quality_figure(snapshot), width="stretch", key="chart_quality")


def render_backtest(result: CheckResult | None) -> None:
    """Where every rule and group fired over the window (nothing without a result)."""
    if result is None:
        return
    section("trigger-backtest")
    st.plotly_chart(charts.backtest_figure(result), width="stretch", key="chart_backtest")
    episodes = backtest_table(result)
    if episodes:
        ui.table(episodes, column_config=BACKTEST_COLUMNS)
    else:
        st.caption("No rule fired anywhere in the window.")
    with st.expander("Every bucket each rule fired in"):
        for item in [*result.rules, *result.groups]:
            st.markdown(f"**{item.name}**: {', '.join(item.fired_buckets) or 'never'}")


def no_feedback(snapshot: StreamSnapshot) -> str:
    """The line shown instead of the feedback charts when the selected predictions have no feedback yet."""
    return (
        f"No feedback yet: none of the {snapshot.totals['predictions']:,} selected predictions has a feedback row, "
        "so there are no arrivals, rates, coverage or label delay to draw. They appear as feedback arrives "
        "(`workbench ingest` or `workbench simulate`)."
    )


def live_caption(snapshot: StreamSnapshot, refreshed: str) -> None:
    """The live mode's line: when the page refreshed and how far the stream has come."""
    st.caption(f"Live: refreshed {refreshed}, stream as of {snapshot.as_of:%Y-%m-%d %H:%M:%S} UTC.")
