"""A/B figures: forest plot of lifts, cumulative effect with fixed-horizon and always-valid bands, Bayes, power.

They take the result objects of :mod:`workbench.abtest.analyse` (and the power curve of :mod:`workbench.abtest.tables`)
and only draw them; every number comes from the result.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from workbench.abtest.formats import unit_of
from workbench.core.plotting import PALETTE, layout

GOOD, BAD, NEUTRAL = "#16a34a", "#dc2626", "#4b5563"


def _colour(c: Any) -> str:
    return GOOD if c.direction == "better" else BAD if c.direction == "worse" else NEUTRAL


def forest_figure(result: Any) -> go.Figure:
    """Relative lift of each variant on each metric with its (adjusted) interval; guardrail margins dashed."""
    rows = [c for c in [*result.comparisons, *result.guardrails] if c.rel_lift is not None]
    fig = go.Figure()
    labels = [f"{'guardrail · ' if c.role == 'guardrail' else ''}{c.label} · {c.variant}" for c in rows]
    for c, label in zip(rows, labels, strict=True):
        lo, hi = c.rel_lift_ci or (c.rel_lift, c.rel_lift)
        level = f"{1 - c.ci_level:.1%}".replace(".0%", "%")
        fig.add_scatter(
            x=[c.rel_lift * 100], y=[label], mode="markers", showlegend=False,
            marker={"size": 12, "color": _colour(c), "symbol": "diamond"},
            error_x={"type": "data", "symmetric": False, "array": [(hi - c.rel_lift) * 100],
                     "arrayminus": [(c.rel_lift - lo) * 100], "thickness": 3, "width": 8, "color": _colour(c)},
            hovertemplate=f"{label}<br>lift %{{x:+.2f}}% [{lo * 100:+.2f}%, {hi * 100:+.2f}%] ({level} CI)"
            f"<br>adjusted p={c.p_adjusted if c.p_adjusted is not None else float('nan'):.3g}<extra></extra>",
        )  # fmt: skip
        margin = (c.guardrail or {}).get("margin_rel")
        if margin:
            edge = -margin * 100 if c.higher_is_better else margin * 100
            fig.add_scatter(x=[edge, edge], y=[label, label], mode="markers", showlegend=False,
                            marker={"symbol": "line-ns", "size": 22, "line": {"width": 2, "color": BAD}},
                            hovertemplate=f"non-inferiority margin {edge:+.1f}%<extra></extra>")  # fmt: skip
    fig.add_vline(x=0, line={"color": "#111827", "width": 1})
    fig = layout(fig, "Relative lift vs control, with intervals at the adjusted level", "")
    fig.update_layout(hovermode="closest", height=max(220, 90 + 60 * len(rows)), xaxis_title="lift vs control (%)",
                      yaxis={"autorange": "reversed"})  # fmt: skip
    fig.update_xaxes(ticksuffix="%", zeroline=False)
    return fig


def cumulative_figure(timeline: Any, kind: str, label: str, unit: str = "") -> go.Figure:
    """Cumulative difference by day with the fixed-horizon CI (valid only at the end) and the always-valid band.

    ``unit``: the metric's unit (a mean's, e.g. ``s``; a rate's difference is in points). The y axis fits the
    cumulative difference and its fixed-horizon CI (:func:`effect_range`); the always-valid band, very wide on
    the first days, may run off it.
    """
    scale, unit = (100, "pts") if kind == "proportion" else (1, unit)

    def scaled(values: list[float | None]) -> list[float | None]:
        return [None if v is None else v * scale for v in values]

    fig = go.Figure()
    x = timeline.days
    fig.add_scatter(x=x, y=scaled(timeline.cs_high), mode="lines", line={"width": 0}, showlegend=False,
                    hoverinfo="skip")  # fmt: skip
    band = f"always-valid {1 - timeline.level:.0%} band (N*={timeline.tuning_n:,.0f}), safe to peek"
    fig.add_scatter(x=x, y=scaled(timeline.cs_low), mode="lines", line={"width": 0}, fill="tonexty",
                    fillcolor="rgba(37, 99, 235, 0.15)", name=band)  # fmt: skip
    fig.add_scatter(x=x, y=scaled(timeline.ci_low), mode="lines", line={"color": PALETTE[1], "dash": "dot"},
                    name=f"fixed-horizon {1 - timeline.level:.0%} CI (valid at the planned end only)")  # fmt: skip
    fig.add_scatter(x=x, y=scaled(timeline.ci_high), mode="lines", line={"color": PALETTE[1], "dash": "dot"},
                    showlegend=False)  # fmt: skip
    fig.add_scatter(x=x, y=scaled(timeline.diff), mode="lines+markers", line={"color": PALETTE[0], "width": 3},
                    name="cumulative difference")  # fmt: skip
    fig.add_hline(y=0, line={"color": "#111827", "width": 1})
    span = effect_range(scaled(timeline.diff), scaled(timeline.ci_low), scaled(timeline.ci_high))
    if span:
        fig.update_yaxes(range=list(span))
    title = f"{label} · {timeline.variant}: cumulative effect by day"
    fig = layout(fig, title, f"difference vs control{f' ({unit})' if unit else ''}")
    fig.update_layout(height=380, legend={"orientation": "h", "y": -0.18, "yanchor": "top", "x": 0, "xanchor": "left"})
    return fig


def effect_range(
    diff: list[float | None], low: list[float | None], high: list[float | None], settle: float = 0.25
) -> tuple[float, float] | None:
    """The y range of the cumulative chart: every day's difference, the fixed-horizon CI once the first ``settle``
    share of the days has passed (the first days' intervals are as wide as their few units make them), and 0,
    padded by 8% of the span. None when there is nothing to draw."""
    start = int(len(diff) * settle)
    values = [v for v in [*diff, *low[start:], *high[start:], 0.0] if v is not None and v == v]
    top, bottom = max(values), min(values)
    if top == bottom:
        return None
    pad = 0.08 * (top - bottom)
    return bottom - pad, top + pad


def bayes_figure(result: Any) -> go.Figure:
    """P(variant beats control) per metric and variant, with the expected loss of shipping it in the hover."""
    rows = [c for c in [*result.comparisons, *result.guardrails] if c.prob_beat_control is not None]
    labels = [f"{c.label} · {c.variant}" for c in rows]
    probs = [c.prob_beat_control * 100 for c in rows]
    colours = [GOOD if p >= 95 else BAD if p <= 5 else NEUTRAL for p in probs]
    loss = [f"{c.expected_loss:.3g}" if c.expected_loss is not None else "n/a" for c in rows]
    fig = go.Figure(go.Bar(
        x=probs, y=labels, orientation="h", marker_color=colours, text=[f"{p:.1f}%" for p in probs],
        textposition="outside", customdata=loss,
        hovertemplate="%{y}<br>P(beats control) %{x:.1f}%<br>expected loss if shipped %{customdata}<extra></extra>",
    ))  # fmt: skip
    for edge in (5, 95):
        fig.add_vline(x=edge, line={"color": "#9ca3af", "dash": "dash", "width": 1})
    fig = layout(fig, "Probability that the variant beats control (Bayesian)", "")
    fig.update_layout(hovermode="closest", height=max(200, 90 + 50 * len(rows)), xaxis_title="probability (%)",
                      yaxis={"autorange": "reversed"})  # fmt: skip
    fig.update_xaxes(range=[0, 112], ticksuffix="%")
    return fig


def power_figure(curve: dict[str, Any]) -> go.Figure:
    """Power against units per arm for the target lift, with the sample so far and the sample needed marked."""
    fig = go.Figure()
    fig.add_scatter(x=curve["n"], y=[p * 100 for p in curve["power"]], mode="lines", line={"color": PALETTE[0],
                    "width": 3}, name=f"power to detect {curve['target']}")  # fmt: skip
    fig.add_hline(y=curve["target_power"] * 100, line={"color": "#9ca3af", "dash": "dash", "width": 1})
    if curve.get("n_needed"):
        fig.add_vline(x=curve["n_needed"], line={"color": GOOD, "dash": "dash"},
                      annotation_text=f"needed {curve['n_needed']:,}", annotation_position="bottom right")  # fmt: skip
    fig.add_scatter(x=[curve["n_now"]], y=[curve["power_now"] * 100], mode="markers+text",
                    marker={"size": 12, "color": PALETTE[1]}, text=[f"now {curve['n_now']:,}"],
                    textposition="top left", name="so far")  # fmt: skip
    fig = layout(fig, f"{curve['label']}: power by sample size", "power (%)")
    fig.update_layout(hovermode="closest", height=340, xaxis_title="units per arm",
                      legend={"orientation": "h", "y": -0.3, "yanchor": "top", "x": 0, "xanchor": "left"})  # fmt: skip
    fig.update_yaxes(range=[0, 105], ticksuffix="%")
    return fig


def shadow_figure(result: Any) -> go.Figure:
    """McNemar's 2×2 table of the labelled pairs: champion right/wrong × challenger right/wrong, counts and shares.

    Only the two discordant cells (one model right) carry the test; they are coloured, the concordant ones grey.
    """
    (both_right, both_wrong), (champion_only, challenger_only) = result.concordant, result.discordant
    cells = [[both_right, challenger_only], [champion_only, both_wrong]]  # rows: challenger right, wrong
    total = max(result.labelled, 1)
    grey = "#e5e7eb"
    colours = [[grey, PALETTE[0]], [PALETTE[1], grey]]  # challenger only right: blue; champion only: orange
    fig = go.Figure()
    for i in range(2):
        for j in range(2):  # j: champion right, wrong
            fig.add_shape(type="rect", x0=j, x1=j + 1, y0=1 - i, y1=2 - i, line={"color": "white", "width": 4},
                          fillcolor=colours[i][j], layer="below")  # fmt: skip
            ink = "#111827" if colours[i][j] == grey else "white"
            fig.add_annotation(x=j + 0.5, y=1.5 - i, showarrow=False, font={"size": 16, "color": ink},
                               text=f"<b>{cells[i][j]:,}</b><br>{cells[i][j] / total:.1%}")  # fmt: skip
    fig = layout(fig, "Who was right on the labelled requests (McNemar's table)", "challenger")
    fig.update_layout(height=320, hovermode=False, showlegend=False)
    fig.update_xaxes(range=[0, 2], tickvals=[0.5, 1.5], ticktext=["right", "wrong"], title="champion",
                     showgrid=False, zeroline=False)  # fmt: skip
    fig.update_yaxes(range=[0, 2], tickvals=[1.5, 0.5], ticktext=["right", "wrong"], showgrid=False, zeroline=False)
    return fig


def segment_forest_figure(breakdown: Any, metric: str, variant: str, overall: Any | None = None) -> go.Figure:
    """Forest plot of one metric × variant by segment value: each value's difference with its interval (at the
    adjusted per-test level), the zero line that decides, the overall effect dashed; a value too small to read is
    a hollow grey marker without an interval; each value is labelled with its smaller arm's n. Rates in points,
    means in their unit."""
    rows = [r for r in breakdown.rows if r.metric == metric and r.variant == variant]
    het = next((h for h in breakdown.heterogeneity if h.metric == metric and h.variant == variant), None)
    kind = rows[0].kind if rows else "mean"
    scale, unit = (100, " pts") if kind == "proportion" else (1, f" {unit_of(metric)}".rstrip())
    fig = go.Figure()
    for r in rows:
        label = f"{r.value} (n {min(r.n_control, r.n_variant):,})"
        x = None if r.diff is None else r.diff * scale
        if r.diff_ci is None:
            fig.add_scatter(x=[x], y=[label], mode="markers", showlegend=False,
                            marker={"size": 11, "color": "#ffffff", "line": {"width": 2, "color": "#9ca3af"}},
                            hovertemplate=f"{r.value}: {r.message or 'not tested'}<extra></extra>")  # fmt: skip
            continue
        lo, hi = (v * scale for v in r.diff_ci)
        colour = GOOD if r.verdict == "better" else BAD if r.verdict == "worse" else NEUTRAL
        level = f"{1 - r.ci_level:.1%}".replace(".0%", "%")
        fig.add_scatter(
            x=[x], y=[label], mode="markers", showlegend=False,
            marker={"size": 12, "color": colour, "symbol": "diamond"},
            error_x={"type": "data", "symmetric": False, "array": [hi - x], "arrayminus": [x - lo], "thickness": 3,
                     "width": 8, "color": colour},
            hovertemplate=f"{r.value}<br>difference %{{x:+.3g}}{unit} [{lo:+.3g}, {hi:+.3g}] ({level} CI)<br>adjusted "
            f"p={r.p_adjusted:.3g}<extra></extra>",
        )  # fmt: skip
    fig.add_vline(x=0, line={"color": "#111827", "width": 1.5})
    if overall is not None and overall.diff is not None:
        fig.add_vline(x=overall.diff * scale, line={"color": PALETTE[0], "width": 2, "dash": "dash"},
                      annotation_text=f"overall {overall.diff * scale:+.3g}{unit}",
                      annotation_position="top")  # fmt: skip
    test = ""
    if het is not None and het.p_value is not None:
        test = f" — Cochran's Q p={het.p_value:.2g}, I²={het.i2:.0%}"
    label = rows[0].label if rows else metric
    fig = layout(fig, f"{label} · {variant} by {breakdown.by}{test}", "")
    fig.update_layout(hovermode="closest", height=max(220, 110 + 45 * len(rows)), yaxis={"autorange": "reversed"},
                      xaxis_title=f"difference vs control ({unit.strip() or 'metric units'})",
                      margin={"t": 70})  # fmt: skip
    fig.update_xaxes(zeroline=False)
    return fig
