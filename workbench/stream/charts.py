"""Figures of the feedback stream page: they draw a StreamSnapshot and a CheckResult, no statistics.

Every time chart marks when each model version started serving; charts of label-based numbers shade
the recent buckets whose labels are still arriving; a rule's fired buckets are drawn as markers on
the chart of its metric. A chart with nothing to draw (no feedback yet, a rate without any trial, no
signal-quality event) says so in words instead of drawing empty axes: Plotly would place the version
marks (dates) on a default numeric axis from -1 to 6 and the browser would log path errors ("MNaN").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.core.plotting import PALETTE, layout
from workbench.stream.buckets import BUCKET_LENGTH, SEGMENT_NONE, bucket_label
from workbench.stream.snapshot import PARTIAL_BELOW, StreamSnapshot, observed_share
from workbench.stream.trigger_results import CheckResult, RuleResult

FIRED = "#dc2626"
SHADE = "#9ca3af"
# chart key → the rule metrics (and feedback_type) whose fired buckets it shows
CHART_METRICS = {
    "volume": {("prediction_volume", None)},
    "arrivals": {("label_volume", None)},
    "accuracy": {("online_accuracy", None)},
    "thumbs_up_rate": {("positive_feedback_rate", "thumb")},
    "click_through_rate": {("positive_feedback_rate", "click")},
    "coverage": {("coverage", None)},
}
# what a rate needs before it has a value (said when there is none)
RATE_TRIALS = {
    "accuracy": "labels from the chosen sources",
    "thumbs_up_rate": "thumbs",
    "click_through_rate": "impressions (clicks)",
}
RATE_TITLES = {
    "accuracy": ("Online accuracy", "share of labels equal to the prediction"),
    "thumbs_up_rate": ("Thumbs-up rate", "thumbs-up / thumbs"),
    "click_through_rate": ("Click-through rate", "clicked / impressions"),
}


def _naive(values: Any) -> Any:
    """UTC timestamps without their zone, so Plotly draws them as UTC whatever the browser's zone."""
    if isinstance(values, pd.Timestamp):
        return values.tz_convert("UTC").tz_localize(None) if values.tzinfo else values
    series = pd.to_datetime(pd.Series(values), utc=True)
    return series.dt.tz_localize(None)


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def mark_versions(fig: go.Figure, versions: pd.DataFrame) -> None:
    """A dotted vertical line where each model version started serving, labelled at the top."""
    for version in versions.itertuples():
        x = _naive(version.first_ts)
        fig.add_shape(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper", line={"dash": "dot", "color": "#6b7280"})
        fig.add_annotation(
            x=x, y=1, yref="paper", text=f"{version.model_version} starts", showarrow=False,
            xanchor="left", yanchor="top", font={"size": 10, "color": "#4b5563"},
        )  # fmt: skip


def shade_incomplete(fig: go.Figure, snapshot: StreamSnapshot) -> None:
    """Shade buckets whose labels are still arriving, and say why on the chart."""
    start = snapshot.labels_incomplete_from
    if start is None or snapshot.labels_complete_hours is None or snapshot.empty:
        return
    end = snapshot.series["bucket"].max() + BUCKET_LENGTH[snapshot.granularity]
    fig.add_vrect(x0=_naive(start), x1=_naive(end), fillcolor=SHADE, opacity=0.18, line_width=0, layer="below")
    days = snapshot.labels_complete_hours / 24
    fig.add_annotation(
        x=_naive(start), y=0, yref="paper", xanchor="left", yanchor="bottom", showarrow=False,
        text=f"labels still arriving<br>({snapshot.labels_complete_share:.0%} arrive within {days:.1f} days)",
        font={"size": 10, "color": "#374151"}, align="left",
    )  # fmt: skip


def mark_fired(fig: go.Figure, result: CheckResult | None, chart: str, granularity: str, scale: float = 1.0) -> None:
    """Markers where each rule on this chart's metric fired (at the rule's own value); only rules of the chart's
    granularity, since a day's label count drawn on an hourly chart would sit at the wrong scale."""
    if result is None:
        return
    for rule in result.rules:
        if (rule.metric, rule.params.get("feedback_type")) not in CHART_METRICS[chart] or rule.window != granularity:
            continue
        fired = rule.frame[rule.frame["fired"]]
        if fired.empty:
            continue
        fig.add_scatter(
            x=_naive(fired["bucket"]), y=fired["value"] * scale, mode="markers", name=f"{rule.name} fires",
            marker={"symbol": "x", "size": 9, "color": FIRED, "line": {"width": 1}},
        )  # fmt: skip


HOURS_SHOWN = pd.Timedelta(days=7)  # hour charts open on the newest week (2,000 hourly points are a blur)


def _finish(fig: go.Figure, title: str, y_title: str, snapshot: StreamSnapshot | None = None) -> go.Figure:
    """The shared layout, with the legend under the plot: half-width charts have no room beside their title.
    Hour charts of a long window open on its newest week (zoom out to see the rest)."""
    fig = layout(fig, title, y_title)
    fig.update_layout(
        legend={"orientation": "h", "y": -0.16, "yanchor": "top", "x": 0, "xanchor": "left"},
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        height=400,
    )
    if snapshot is not None and snapshot.granularity == "hour" and not snapshot.empty:
        end = snapshot.series["bucket"].max() + BUCKET_LENGTH["hour"]
        start = max(snapshot.series["bucket"].min(), end - HOURS_SHOWN)
        fig.update_xaxes(range=[_naive(start), _naive(end)])
    return fig


def message_figure(title: str, message: str, height: int = 400) -> go.Figure:
    """A chart that has nothing to draw: its title and one sentence saying why, no axes and no traces."""
    fig = go.Figure()
    fig.add_annotation(
        x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, text=message,
        font={"size": 13, "color": "#4b5563"},
    )  # fmt: skip
    fig = layout(fig, title, "")
    fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, height=height, hovermode=False)
    return fig


def has_values(values: Any) -> bool:
    """True when at least one value is a finite number (a trace of only NaN draws nothing)."""
    array = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)
    return bool(np.isfinite(array).any())


def _segments(snapshot: StreamSnapshot) -> list[tuple[str, pd.DataFrame]]:
    return [(str(name), part) for name, part in snapshot.series.groupby("segment", sort=True)]


def _name(segment: str, prefix: str = "") -> str:
    return prefix if segment == SEGMENT_NONE else f"{prefix}{' · ' if prefix else ''}{segment}"


def _hatched(observed: pd.Series) -> dict[str, Any]:
    """Bar marker settings that hatch and fade the buckets observed under :data:`PARTIAL_BELOW`."""
    partial = observed < PARTIAL_BELOW
    return {"pattern": {"shape": ["/" if p else "" for p in partial]}, "opacity": [0.55 if p else 1.0 for p in partial]}


def note_partial(fig: go.Figure, buckets: pd.Series, observed: pd.Series, granularity: str) -> None:
    """Say above the plot which buckets are partial and how much of each the stream covers."""
    partial = observed < PARTIAL_BELOW
    if not partial.any():
        return
    shares = ", ".join(
        f"{bucket_label(b, granularity)}: {o:.0%}" for b, o in zip(buckets[partial], observed[partial], strict=True)
    )
    fig.add_annotation(
        x=1, y=1.0, xref="paper", yref="paper", xanchor="right", yanchor="bottom", showarrow=False,
        text=f"hatched: partial {granularity}s ({shares} of the {granularity} observed)",
        font={"size": 10, "color": "#4b5563"},
    )  # fmt: skip


def volume_figure(snapshot: StreamSnapshot, result: CheckResult | None = None) -> go.Figure:
    """Stacked predictions per bucket by segment; a bucket the stream covers only in part is hatched and says
    how much of it was observed (a short first week is not a drop in traffic)."""
    fig = go.Figure()
    unit = snapshot.granularity
    for i, (segment, part) in enumerate(_segments(snapshot)):
        fig.add_bar(
            x=_naive(part["bucket"]), y=part["predictions"], name=_name(segment, "predictions"),
            marker={"color": PALETTE[i % len(PALETTE)], **_hatched(part["observed"])}, customdata=part["observed"],
            hovertemplate=f"%{{x}}<br>%{{y:,}} predictions<br>%{{customdata:.0%}} of the {unit} observed"
            "<extra></extra>",
        )  # fmt: skip
    overall = snapshot.overall()
    note_partial(fig, overall["bucket"], overall["observed"], unit)
    mark_versions(fig, snapshot.versions)
    mark_fired(fig, result, "volume", snapshot.granularity)
    fig.update_layout(barmode="stack", bargap=0.05)
    return _finish(fig, f"Predictions per {snapshot.granularity}", "predictions", snapshot)


def arrivals_figure(snapshot: StreamSnapshot, by: str = "kind", result: CheckResult | None = None) -> go.Figure:
    """Stacked feedback rows by arrival bucket, by kind or type; buckets the arrivals cover in part are hatched
    (observed share from the first to the newest arrival, as for predictions)."""
    title = f"Feedback arriving per {snapshot.granularity}, by {by}"
    if snapshot.arrivals.empty:
        return message_figure(title, "No feedback has arrived yet for these predictions.")
    arrivals = snapshot.arrivals.groupby(["bucket", by], as_index=False)["rows"].sum()
    unit = snapshot.granularity
    first = snapshot.arrivals["first"].min() if not snapshot.arrivals.empty else None
    last = snapshot.arrivals["last"].max() if not snapshot.arrivals.empty else None
    arrivals["observed"] = observed_share(arrivals["bucket"], unit, first, last)
    fig = go.Figure()
    for i, (name, part) in enumerate(arrivals.groupby(by, sort=True)):
        fig.add_bar(x=_naive(part["bucket"]), y=part["rows"], name=str(name),
                    marker={"color": PALETTE[i % len(PALETTE)], **_hatched(part["observed"])})  # fmt: skip
    buckets = arrivals.drop_duplicates("bucket").sort_values("bucket")
    note_partial(fig, buckets["bucket"], buckets["observed"], unit)
    mark_versions(fig, snapshot.versions)
    mark_fired(fig, result, "arrivals", snapshot.granularity)
    fig.update_layout(barmode="stack", bargap=0.05)
    return _finish(fig, title, "feedback rows", snapshot)


def rate_figure(snapshot: StreamSnapshot, rate: str, result: CheckResult | None = None) -> go.Figure:
    """One line per segment with its Wilson band; label-based rates shade buckets still receiving labels."""
    title, y_title = RATE_TITLES[rate]
    if snapshot.empty or not has_values(snapshot.series[rate]):
        trials = RATE_TRIALS[rate]
        return message_figure(f"{title} per {snapshot.granularity}", f"No {trials} yet in the selected window.")
    fig = go.Figure()
    for i, (segment, part) in enumerate(_segments(snapshot)):
        if not has_values(part[rate]):  # a segment without a single trial has no line to draw
            continue
        color = PALETTE[i % len(PALETTE)]
        x = _naive(part["bucket"])
        band_x, band_y = _band(x, part[f"{rate}_lower"], part[f"{rate}_upper"])
        fig.add_scatter(x=band_x, y=band_y, mode="lines", line={"width": 0}, fill="toself",
                        fillcolor=_rgba(color, 0.18), showlegend=False, hoverinfo="skip")  # fmt: skip
        fig.add_scatter(x=x, y=part[rate], mode="lines+markers", name=_name(segment, title.lower()),
                        line={"color": color, "width": 2}, marker={"size": 4})  # fmt: skip
    if rate == "accuracy":
        shade_incomplete(fig, snapshot)
    mark_versions(fig, snapshot.versions)
    mark_fired(fig, result, rate, snapshot.granularity)
    band = f"{snapshot.confidence:.0%} Wilson interval"
    fig = _finish(fig, f"{title} per {snapshot.granularity} (band: {band})", y_title, snapshot)
    fig.update_yaxes(tickformat=".0%")
    return fig


def _band(x: Any, lower: pd.Series, upper: pd.Series) -> tuple[list[Any], list[Any]]:
    """One closed polygon per run of buckets with an interval (None between runs): a bucket without trials
    has no band, and a fill must not bridge it (``tonexty`` across a gap draws a band where there is none)."""
    xs, ys = list(pd.Series(x)), []
    lo, hi = lower.to_numpy(float), upper.to_numpy(float)
    ok = np.isfinite(lo) & np.isfinite(hi)
    band_x: list[Any] = []
    start = None
    for i in range(len(ok) + 1):
        if i < len(ok) and ok[i]:
            start = i if start is None else start
            continue
        if start is not None:
            run = range(start, i)
            band_x += [xs[j] for j in run] + [xs[j] for j in reversed(run)] + [None]
            ys += [hi[j] for j in run] + [lo[j] for j in reversed(run)] + [None]
            start = None
    return band_x, ys


def coverage_figure(snapshot: StreamSnapshot, result: CheckResult | None = None) -> go.Figure:
    """Share of each bucket's predictions with any feedback and with a label."""
    if snapshot.empty:
        return message_figure(f"Coverage per {snapshot.granularity}", "No predictions in the selected window.")
    overall = snapshot.overall()
    fig = go.Figure()
    x = _naive(overall["bucket"])
    fig.add_scatter(x=x, y=overall["coverage_any"], name="any feedback", mode="lines", line={"color": PALETTE[0]})
    fig.add_scatter(x=x, y=overall["coverage_labelled"], name="labelled", mode="lines", line={"color": PALETTE[2]})
    shade_incomplete(fig, snapshot)
    mark_versions(fig, snapshot.versions)
    mark_fired(fig, result, "coverage", snapshot.granularity)
    fig = _finish(fig, f"Coverage per {snapshot.granularity} (share of predictions)", "share of predictions", snapshot)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return fig


def delay_figure(snapshot: StreamSnapshot) -> go.Figure:
    """Histogram of label delay (days) by feedback type, and the share of labels arrived within N days."""
    delays = snapshot.delays
    if not delays.labels or delays.histogram.empty:
        return message_figure("Label delay", "No labels from the chosen sources yet: no delay to measure.")
    fig = go.Figure()
    width = (delays.histogram["delay_hours"].diff().min() if len(delays.histogram) > 1 else 6.0) or 6.0
    for i, (name, part) in enumerate(delays.histogram.groupby("type", sort=True)):
        fig.add_bar(x=(part["delay_hours"] + width / 2) / 24, y=part["labels"], width=width / 24, name=str(name),
                    marker_color=PALETTE[i % len(PALETTE)])  # fmt: skip
    fig.add_scatter(
        x=delays.arrived_within["days"], y=delays.arrived_within["share"], yaxis="y2", mode="lines+markers",
        name="share arrived within N days", line={"color": "#111827", "width": 2}, marker={"size": 4},
    )  # fmt: skip
    hours = snapshot.labels_complete_hours
    if hours is not None:
        fig.add_shape(type="line", x0=hours / 24, x1=hours / 24, y0=0, y1=1, yref="paper",
                      line={"dash": "dash", "color": FIRED})  # fmt: skip
        fig.add_annotation(x=hours / 24, y=0.5, yref="paper", xanchor="left", yanchor="middle", showarrow=False,
                           text=f"{snapshot.labels_complete_share:.0%} within {hours / 24:.1f} days",
                           font={"size": 10, "color": FIRED})  # fmt: skip
    cohort = (
        "every prediction: recent labels are still missing, so delays are underestimated"
        if delays.censored
        else f"predictions older than {delays.horizon_days:g} days, whose labels are in"
    )
    fig.update_layout(
        barmode="stack",
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "range": [0, 1.02],
            "tickformat": ".0%",
            "showgrid": False,
            "tickmode": "array",
            "tickvals": [0, 0.25, 0.5, 0.75, 1.0],
        },
        xaxis={"range": [0, delays.horizon_days], "title": "days from prediction to label"},
    )
    fig = _finish(fig, f"Label delay<br><sup>{delays.labels:,} labels of {cohort}</sup>", "labels")
    fig.update_layout(hovermode="closest", legend={"y": -0.22})  # below the x axis title
    return fig


def quality_figure(snapshot: StreamSnapshot) -> go.Figure:
    """Quarantined rows by reason (bars, ingest time); conflicts and repeats (prediction time), orphans
    (arrival time) and duplicates dropped at ingest (lines)."""
    quality = snapshot.quality
    fig = go.Figure()
    reasons = quality.quarantine.groupby(["bucket", "reason"], as_index=False)["rows"].sum()
    for i, (reason, part) in enumerate(reasons.groupby("reason", sort=True)):
        fig.add_bar(x=_naive(part["bucket"]), y=part["rows"], name=f"quarantined: {reason}",
                    marker_color=PALETTE[(i + 4) % len(PALETTE)])  # fmt: skip
    lines = [
        (quality.conflicts, "conflicting", "traces with conflicting labels", PALETTE[4]),
        (quality.conflicts, "repeated", "traces with a repeated feedback type", PALETTE[3]),
        (quality.orphans, "rows", "orphan feedback (no prediction)", PALETTE[7]),
        (quality.ingest_duplicates, "duplicates", "identical rows dropped at ingest", PALETTE[5]),
    ]
    buckets = pd.DatetimeIndex(snapshot.series["bucket"].unique()).sort_values()
    for frame, column, name, color in lines:
        if len(frame) and frame[column].sum():
            # zero-filled on the stream's buckets: a line between two events must not suggest events between them
            per_bucket = frame.groupby("bucket")[column].sum()
            per_bucket = per_bucket.reindex(buckets.union(per_bucket.index), fill_value=0)
            fig.add_scatter(x=_naive(per_bucket.index), y=per_bucket.to_numpy(), name=name,
                            mode="lines", line={"color": color, "width": 1.5})  # fmt: skip
    title = f"Signal quality per {snapshot.granularity}"
    if not fig.data:  # nothing quarantined, conflicting, repeated, orphaned or dropped: say so, draw no axes
        return message_figure(title, "No quarantined, conflicting, repeated, orphan or duplicate rows.")
    mark_versions(fig, snapshot.versions)
    fig.update_layout(barmode="stack")
    return _finish(fig, title, "rows or traces", snapshot)


def backtest_figure(result: CheckResult) -> go.Figure:
    """One panel per rule: its metric per bucket, the threshold, the buckets it fired in, the pending tail."""
    rules = result.rules
    fig = make_subplots(
        rows=len(rules), cols=1, shared_xaxes=True, vertical_spacing=0.06 if len(rules) > 1 else 0,
        subplot_titles=[f"{r.name}: {r.description}" for r in rules],
    )  # fmt: skip
    for row, rule in enumerate(rules, start=1):
        _rule_panel(fig, rule, row)
    fig.update_annotations(font={"size": 12}, xanchor="left", x=0)  # the panel titles, flush left
    for row, rule in enumerate(rules, start=1):
        _say_why_empty(fig, rule, row)
    legend = (
        "line: the rule's metric per bucket · ● judged · ✖ fired · dashed: threshold · "
        "grey: pending (incomplete, labels not settled or too few)"
    )
    fig = layout(fig, f"Trigger backtest: where each rule would have fired<br><sup>{legend}</sup>", "")
    fig.update_layout(margin={"l": 10, "r": 10, "t": 80, "b": 10})
    fig.update_layout(height=max(260, 170 * len(rules)), hovermode="closest", showlegend=False)
    return fig


def _say_why_empty(fig: go.Figure, rule: RuleResult, row: int) -> None:
    """In the panel of a rule without any value (in error, or no bucket with a value): why, in words, centred in
    paper coordinates (a reference to an axis that has no data would make Plotly autorange that axis from 1970)."""
    if has_values(rule.frame["value"]):
        return
    why = f"error: {rule.error}" if rule.error else f"no value in any bucket ({rule.reason or 'no data'})"
    low, high = fig.layout["yaxis" if row == 1 else f"yaxis{row}"].domain
    fig.add_annotation(
        x=0.5, y=(low + high) / 2, xref="paper", yref="paper", showarrow=False, text=why,
        font={"size": 11, "color": FIRED if rule.error else "#4b5563"},
    )  # fmt: skip


def _rule_panel(fig: go.Figure, rule: RuleResult, row: int) -> None:
    """The rule's metric per bucket, judged and fired buckets, threshold and pending tail; a rule without any
    value (in error, or no bucket with a value) says why in its panel instead of drawing NaN-only lines."""
    frame = rule.frame
    if not has_values(frame["value"]):  # nothing to draw: _say_why_empty writes why in the panel
        fig.update_yaxes(visible=False, row=row, col=1)
        return
    x = _naive(frame["bucket"])
    fig.add_scatter(x=x, y=frame["value"], mode="lines", line={"color": "#9ca3af", "width": 1}, row=row, col=1,
                    name=f"{rule.name} (all buckets)")  # fmt: skip
    judged = frame[frame["evaluable"]]
    fig.add_scatter(x=_naive(judged["bucket"]), y=judged["value"], mode="markers", row=row, col=1,
                    marker={"size": 5, "color": PALETTE[0]}, name=f"{rule.name} (judged)")  # fmt: skip
    fired = frame[frame["fired"]]
    fig.add_scatter(x=_naive(fired["bucket"]), y=fired["value"], mode="markers", row=row, col=1,
                    marker={"symbol": "x", "size": 9, "color": FIRED}, name=f"{rule.name} fires")  # fmt: skip
    fig.add_hline(y=rule.threshold, line={"dash": "dash", "color": FIRED, "width": 1}, row=row, col=1)
    pending = frame[frame["pending"]]
    if len(pending):
        end = pending["bucket"].max() + BUCKET_LENGTH[rule.window]
        fig.add_vrect(x0=_naive(pending["bucket"].min()), x1=_naive(end), fillcolor=SHADE, opacity=0.18,
                      line_width=0, row=row, col=1)  # fmt: skip
