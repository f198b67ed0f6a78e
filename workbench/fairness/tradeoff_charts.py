"""Figures of the fairness trade-offs: model versions on accuracy vs disparity with the Pareto front, and the
mitigation preview's before/after with the group thresholds. They only draw the audit's ``comparison`` and
``mitigation`` sections (``workbench.fairness.tradeoffs``)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.core.plotting import PALETTE, layout

FRONT, DOMINATED, DECIDING = "#2563eb", "#9ca3af", "#111827"


def _errors(values: list[float | None], intervals: list[list[float | None]]) -> dict[str, Any]:
    """Asymmetric error bars from intervals (0 where a value or an end is undefined)."""
    plus = [(hi - v) if hi is not None and v is not None else 0 for v, (_, hi) in zip(values, intervals, strict=True)]
    minus = [(v - lo) if lo is not None and v is not None else 0 for v, (lo, _) in zip(values, intervals, strict=True)]
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "color": "#374151"}


def pareto_figure(audit: Any) -> go.Figure:
    """Each model version at (disparity, accuracy) with both intervals, the Pareto front as a line, and the
    champion's accuracy and disparity as dashed lines: the challenger is better up and to the left of them."""
    comparison = audit.comparison or {"versions": [], "disparity": "disparity"}
    name = comparison["disparity"].replace("_", " ")
    points = [p for p in comparison["versions"] if p["accuracy"] is not None and p["disparity"] is not None]
    fig = go.Figure()
    front = sorted((p for p in points if p["on_front"]), key=lambda p: p["disparity"])
    if len(front) > 1:
        fig.add_scatter(x=[p["disparity"] for p in front], y=[p["accuracy"] for p in front], mode="lines",
                        line={"color": FRONT, "width": 1.5, "shape": "hv"}, name="Pareto front",
                        hoverinfo="skip")  # fmt: skip
    for on, colour, label in ((True, FRONT, "on the front"), (False, DOMINATED, "dominated")):
        part = [p for p in points if p["on_front"] == on]
        if not part:
            continue
        fig.add_scatter(
            x=[p["disparity"] for p in part], y=[p["accuracy"] for p in part], mode="markers+text", name=label,
            text=[p["version"] for p in part], textposition="top right", marker={"size": 12, "color": colour},
            error_x=_errors([p["disparity"] for p in part], [p["disparity_ci"] for p in part]),
            error_y=_errors([p["accuracy"] for p in part], [p["accuracy_ci"] for p in part]),
            customdata=[[p["n_labelled"]] for p in part],
            hovertemplate="%{text}: accuracy %{y:.3f}, " + name
            + " %{x:.3f}<br>%{customdata[0]:,} labelled<extra></extra>",
        )  # fmt: skip
    champion = next((p for p in points if p["version"] == comparison.get("champion")), None)
    if champion:
        line = {"color": DECIDING, "dash": "dash", "width": 1}
        fig.add_hline(y=champion["accuracy"], line=line, annotation_text=f"champion {champion['version']} accuracy",
                      annotation_position="bottom right")  # fmt: skip
        fig.add_vline(x=champion["disparity"], line=line, annotation_text=f"champion {name}",
                      annotation_position="top left")  # fmt: skip
    level = f"{audit.settings.get('confidence', 0.95):.0%}"
    fig = layout(fig, f"Model versions: accuracy vs {name} ({level} intervals; up and left is better)", "accuracy")
    fig.update_layout(hovermode="closest", xaxis_title=f"{name} (lower is fairer)", height=420)
    return fig


def mitigation_figure(audit: Any) -> go.Figure:
    """Accuracy and the constraint's disparity with the model's predictions and after the preview's thresholds
    (bootstrap intervals; the disparity's 'before' as the dashed line the change is held to), and each group's
    two thresholds (marker size: the probability each is used)."""
    m = audit.mitigation or {}
    name = m.get("disparity", "disparity").replace("_", " ")
    fig = make_subplots(rows=1, cols=3, column_widths=[0.25, 0.25, 0.5], horizontal_spacing=0.08,
                        subplot_titles=("accuracy", name, "thresholds per group (score ≥ t)"))  # fmt: skip
    for col, what in ((1, "accuracy"), (2, "disparity")):
        values = [m.get(f"{what}_before"), m.get(f"{what}_after")]
        intervals = [m.get(f"{what}_before_ci") or [None, None], m.get(f"{what}_after_ci") or [None, None]]
        fig.add_bar(x=["before", "after"], y=values, marker_color=[DOMINATED, FRONT], showlegend=False,
                    error_y=_errors(values, intervals), row=1, col=col,
                    hovertemplate="%{x}: %{y:.3f}<extra></extra>")  # fmt: skip
        # the value as text beside the bar's top: a bar of height 0 shows no text of its own
        fig.add_scatter(x=["before", "after"], y=[v or 0 for v in values], mode="text", showlegend=False,
                        text=["n/a" if v is None else f"{v:.3f}" for v in values], textposition="top right",
                        hoverinfo="skip", cliponaxis=False, row=1, col=col)  # fmt: skip
    if m.get("disparity_before") is not None:
        fig.add_hline(y=m["disparity_before"], line={"color": DECIDING, "dash": "dash", "width": 1}, row=1, col=2)
    rules = m.get("thresholds") or []
    for k, (key, p_key) in enumerate((("threshold_0", "p_0"), ("threshold_1", "p_1"))):
        shown = [r for r in rules if r[key] is not None and r[p_key] > 1e-9]
        fig.add_scatter(
            x=[r[key] for r in shown], y=[r["group"] for r in shown], mode="markers", name=f"threshold {k}",
            marker={"size": [8 + 14 * r[p_key] for r in shown], "color": PALETTE[k + 1]},
            customdata=[[r[p_key], r["rule"]] for r in shown], row=1, col=3,
            hovertemplate="%{y}: score ≥ %{x:.3f} with probability %{customdata[0]:.2f}<br>%{customdata[1]}"
            "<extra></extra>",
        )  # fmt: skip
    constraint = str(m.get("constraint", "")).replace("_", " ")
    fig = layout(fig, f"Mitigation preview ({constraint}): before and after, with the group thresholds", "")
    fig.update_layout(hovermode="closest", height=400, legend={"orientation": "h", "y": -0.12, "yanchor": "top",
                                                                "x": 1, "xanchor": "right"})  # fmt: skip
    fig.update_xaxes(range=[0, 1], row=1, col=3)
    fig.update_yaxes(type="category", autorange="reversed", row=1, col=3)
    return fig
