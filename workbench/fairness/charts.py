"""Fairness figures: group rates with Wilson intervals and the reference line, the ratio to the reference over
time with the tolerated band, representation of the labelled feedback, champion vs challenger, calibration.

They take a :class:`workbench.fairness.audit.FairnessAudit` and only draw it; every number comes from the audit.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from workbench.core.plotting import PALETTE, layout
from workbench.stats.fairness import HEADLINE_DISPARITIES, METRIC_NAMES

STATUS_COLOURS = {"fail": "#dc2626", "pass": "#2563eb", "reference": "#111827", "insufficient data": "#9ca3af"}


def group_rates_figure(audit: Any, metric: str) -> go.Figure:
    """Each group's rate with its Wilson interval, coloured by status; the reference group's rate as a line
    with the tolerated band (rate × [1/max_ratio, max_ratio]) shaded."""
    name = METRIC_NAMES[metric]
    rows = [g for g in audit.groups if g[metric] is not None]
    fig = go.Figure()
    for status, colour in STATUS_COLOURS.items():
        part = [g for g in rows if g["status"] == status]
        if not part:
            continue
        values = [g[metric] for g in part]
        lows = [g["ci"][metric][0] for g in part]
        highs = [g["ci"][metric][1] for g in part]
        fig.add_bar(
            y=[g["group"] for g in part], x=values, orientation="h", name=status, marker_color=colour,
            marker_opacity=[1.0 if g["sufficient"][metric] else 0.35 for g in part],
            error_x={"type": "data", "symmetric": False, "array": [h - v for h, v in zip(highs, values, strict=True)],
                     "arrayminus": [v - lo for v, lo in zip(values, lows, strict=True)], "color": "#374151"},
            customdata=[[lo, h, g["n"]] for lo, h, g in zip(lows, highs, part, strict=True)],
            hovertemplate="%{y}: %{x:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}]<br>n=%{customdata[2]:,}"
            "<extra></extra>",
        )  # fmt: skip
    rates = audit.by_group[metric]
    value = rates.get(audit.reference_group)
    if value is not None and value == value:  # the reference's rate is defined (not NaN)
        band = audit.settings.get("max_ratio", 1.25)
        fig.add_vrect(x0=value / band, x1=min(value * band, 1.0), fillcolor="#16a34a", opacity=0.08, line_width=0,
                      layer="below")  # fmt: skip
        fig.add_vline(x=value, line={"color": "#111827", "dash": "dash", "width": 1.5},
                      annotation_text=f"reference {audit.reference_group}: {value:.3f}",
                      annotation_position="top")  # fmt: skip
    level = f"{audit.settings.get('confidence', 0.95):.0%}"
    fig = layout(fig, f"{name} by group, {level} Wilson intervals (faded: below the minimum size)", "")
    fig.update_layout(hovermode="closest", height=max(260, 110 + 34 * len(rows)), xaxis_title=name,
                      yaxis={"autorange": "reversed", "type": "category"}, barmode="overlay")  # fmt: skip
    fig.update_xaxes(rangemode="tozero")
    return fig


def ratio_over_time_figure(audit: Any, metric: str) -> go.Figure:
    """Each group's ratio of ``metric`` to the reference group per time chunk, with the tolerated band."""
    timeline = audit.over_time or {}
    fig = go.Figure()
    ratios = (timeline.get("ratio") or {}).get(metric, {})
    for i, (group, values) in enumerate(ratios.items()):
        fig.add_scatter(x=timeline["chunks"], y=values, name=group, mode="lines+markers",
                        line={"color": PALETTE[i % len(PALETTE)], "width": 2}, connectgaps=False)  # fmt: skip
    band = audit.settings.get("max_ratio", 1.25)
    fig.add_hrect(y0=1 / band, y1=band, fillcolor="#16a34a", opacity=0.08, line_width=0, layer="below")
    fig.add_hline(y=1, line={"color": "#111827", "dash": "dash", "width": 1})
    chunk = timeline.get("chunk", "chunk")
    title = f"{METRIC_NAMES[metric]} ratio to {audit.reference_group} per {chunk} (band: ×{1 / band:.2f}–{band:g})"
    fig = layout(fig, title, f"{METRIC_NAMES[metric]} ÷ reference")
    fig.update_layout(hovermode="x unified")
    return fig


def representation_figure(audit: Any) -> go.Figure:
    """Per group: share of predictions, of labelled feedback and (when given) of the reference population."""
    rep = audit.representation or {"groups": []}
    groups = [g["group"] for g in rep["groups"]]
    fig = go.Figure()
    series = [("share_predictions", "predictions"), ("share_labelled", "labelled feedback")]
    if any(g["population_share"] is not None for g in rep["groups"]):
        series.append(("population_share", "reference population"))
    for i, (key, label) in enumerate(series):
        fig.add_bar(x=groups, y=[g[key] for g in rep["groups"]], name=label, marker_color=PALETTE[i])
    flagged = [g["group"] for g in rep["groups"] if g["under_represented"]]
    subtitle = f"under-represented: {', '.join(flagged)}" if flagged else "no group under-represented"
    fig = layout(fig, f"Who the retrain would learn from<br><sup>{subtitle}</sup>", "share")
    fig.update_layout(barmode="group", hovermode="x unified")
    fig.update_yaxes(tickformat=".0%")
    return fig


def versions_figure(audit: Any) -> go.Figure:
    """fairlearn's four disparities for champion and challenger side by side, with bootstrap intervals."""
    versions = audit.versions or {}
    names = sorted(HEADLINE_DISPARITIES, key=lambda n: n.endswith("_ratio"))  # the differences, then the ratios
    fig = go.Figure()
    for i, (version, part) in enumerate((versions.get("per_version") or {}).items()):
        values = [part["disparities"].get(n) for n in names]
        intervals = [part["intervals"].get(n) or [None, None] for n in names]
        fig.add_bar(
            x=[n.replace("_", " ") for n in names], y=values, name=version, marker_color=PALETTE[i],
            error_y={"type": "data", "symmetric": False,
                     "array": [(hi - v) if hi is not None and v is not None else 0 for v, (_, hi) in
                               zip(values, intervals, strict=True)],
                     "arrayminus": [(v - lo) if lo is not None and v is not None else 0 for v, (lo, _) in
                                    zip(values, intervals, strict=True)]},
        )  # fmt: skip
    fig = layout(fig, "Champion vs challenger: disparities with 95% bootstrap intervals", "")
    fig.update_layout(barmode="group", hovermode="x unified")
    return fig


def calibration_figure(audit: Any) -> go.Figure:
    """Observed positive rate vs mean score per score decile and group (the diagonal is perfect calibration)."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"color": "#9ca3af", "dash": "dot"})
    groups = (audit.calibration or {}).get("groups", {})
    for i, (group, part) in enumerate(groups.items()):
        bins = [b for b in part["bins"] if b["n"] > 0]
        fig.add_scatter(x=[b["mean_score"] for b in bins], y=[b["positive_rate"] for b in bins], name=group,
                        mode="lines+markers", line={"color": PALETTE[i % len(PALETTE)]})  # fmt: skip
    fig = layout(fig, "Calibration by score decile", "observed positive rate")
    fig.update_layout(hovermode="closest", xaxis_title="mean score")
    return fig
