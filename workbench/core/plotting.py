"""Plotly figure builders: they take result objects or aggregates and return figures, no statistics."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

PALETTE = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#4b5563"]


def _layout(fig: go.Figure, title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "font": {"size": 16}},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        yaxis_title=y_title,
        hovermode="x unified",
        template="plotly_white",
        height=360,
    )
    return fig


def layout(fig: go.Figure, title: str, y_title: str) -> go.Figure:
    """Returns ``fig`` in the house style (title, horizontal legend, white template, 360 px): for the charts."""
    return _layout(fig, title, y_title)


def daily_volume_figure(volume: Any) -> go.Figure:
    """Stacked daily predictions by model version, with feedback per prediction as a line (right axis)."""
    fig = go.Figure()
    for i, (version, part) in enumerate(volume.groupby("model_version", sort=True)):
        fig.add_bar(x=part["day"], y=part["predictions"], name=f"predictions · {version}", marker_color=PALETTE[i])
    totals = volume.groupby("day", as_index=False)[["predictions", "feedback"]].sum()
    ratio = totals["feedback"] / totals["predictions"].where(totals["predictions"] > 0)
    fig.add_scatter(
        x=totals["day"],
        y=ratio,
        name="feedback per prediction",
        yaxis="y2",
        mode="lines",
        line={"color": "#111827", "width": 2},
    )
    fig.update_layout(
        barmode="stack",
        yaxis2={
            "title": "feedback per prediction",
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "tickformat": ".2f",
            "showgrid": False,
        },
    )
    return _layout(fig, "Daily predictions and feedback", "predictions per day")


def feedback_mix_figure(by_type: dict[str, int], by_kind: dict[str, int]) -> go.Figure:
    """Horizontal bars: feedback rows by type (what users and systems told us)."""
    items = sorted(by_type.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[n for _, n in items], y=[t for t, _ in items], orientation="h", marker_color=PALETTE[0]))
    kinds = " · ".join(f"{k} {n:,}" for k, n in by_kind.items())
    fig = _layout(fig, f"Feedback by type<br><sup>{kinds}</sup>", "")
    fig.update_layout(hovermode="closest", height=280, xaxis_title="rows")
    return fig
