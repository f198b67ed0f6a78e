"""Plotly figures for drift: PSI by feature, distributions, the feature × time heatmap, performance, multivariate.

They take result objects (:class:`~workbench.drift.result.DriftResult`,
:class:`~workbench.drift.over_time.DriftOverTime`, :class:`~workbench.drift.performance.PerformanceOverTime`)
and compute nothing.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.core.plotting import PALETTE, layout

REFERENCE_COLOR, CURRENT_COLOR, DRIFT_COLOR, OK_COLOR = "#64748b", PALETTE[0], "#dc2626", "#94a3b8"


def psi_bars_figure(result: Any) -> go.Figure:
    """Horizontal bars of the statistic that decided (drifted in red, on top), with its threshold as a dashed line.

    A large reference is judged by PSI (bars: PSI, line at ``psi_threshold``); a small one by the BH-adjusted
    p-value (bars: −log10 of it, line at ``p_value``): the chart draws the summary's ``rule``, the one each
    feature's ``decided_by`` names, so a bar's colour always agrees with the line it crosses.
    """
    if result.summary.get("rule") == "p_value":
        return _p_bars_figure(result)
    rows = [f for f in reversed(result.ordered) if f.psi is not None]  # plotly draws the first bar at the bottom
    fig = go.Figure(
        go.Bar(
            x=[f.psi for f in rows],
            y=[f.name for f in rows],
            orientation="h",
            marker_color=[DRIFT_COLOR if f.drift else OK_COLOR for f in rows],
            customdata=[[f.js_distance or 0, f.p_adjusted if f.p_adjusted is not None else float("nan")] for f in rows],
            hovertemplate="%{y}: PSI %{x:.3f}<br>JS %{customdata[0]:.3f}, p adj %{customdata[1]:.2g}<extra></extra>",
        )
    )
    threshold = result.settings.get("psi_threshold", 0.1)
    fig.add_vline(
        x=threshold, line_dash="dash", line_color="#111827", annotation_text=f"PSI {threshold:g}",
        annotation_position="bottom right",
    )  # fmt: skip
    fig = layout(fig, f"Population stability index by feature (red: drifted, PSI ≥ {threshold:g})", "")
    fig.update_layout(hovermode="closest", height=max(260, 28 * len(rows) + 90), xaxis_title="PSI")
    return fig


P_FLOOR = 1e-300  # −log10 of a p-value of 0 (below double precision) is drawn at 300


def _p_bars_figure(result: Any) -> go.Figure:
    rows = [f for f in reversed(result.ordered) if f.p_adjusted is not None or f.drift]
    scores = [-math.log10(max(f.p_adjusted if f.p_adjusted is not None else 1.0, P_FLOOR)) for f in rows]
    fig = go.Figure(
        go.Bar(
            x=scores,
            y=[f.name for f in rows],
            orientation="h",
            marker_color=[DRIFT_COLOR if f.drift else OK_COLOR for f in rows],
            customdata=[[_or_nan(f.p_adjusted), _or_nan(f.psi)] for f in rows],
            hovertemplate="%{y}: BH-adjusted p %{customdata[0]:.2g}<br>PSI %{customdata[1]:.3f}<extra></extra>",
        )
    )
    alpha = result.settings.get("p_value", 0.05)
    fig.add_vline(
        x=-math.log10(alpha), line_dash="dash", line_color="#111827", annotation_text=f"p = {alpha:g}",
        annotation_position="bottom right",
    )  # fmt: skip
    fig = layout(fig, f"BH-adjusted p by feature (red: drifted, p < {alpha:g}; small reference)", "")
    fig.update_layout(
        hovermode="closest", height=max(260, 28 * len(rows) + 90), xaxis_title="−log10 BH-adjusted p (right: smaller p)"
    )
    return fig


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def distribution_figure(feature: Any) -> go.Figure:
    """Reference vs current: histogram and ECDF for a numeric feature, bars (unseen marked) for a categorical one."""
    d = feature.distribution
    if feature.type == "categorical":
        return _category_figure(feature)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Histogram (share of values)", "Empirical CDF"))
    if d.get("hist_edges"):
        edges = d["hist_edges"]
        centers = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        widths = [b - a for a, b in itertools.pairwise(edges)]
        for name, key, color in (
            ("reference", "hist_reference", REFERENCE_COLOR),
            ("current", "hist_current", CURRENT_COLOR),
        ):
            fig.add_bar(x=centers, y=d[key], width=widths, name=name, marker_color=color, opacity=0.55, row=1, col=1)
        for name, key, color in (
            ("reference", "ecdf_reference", REFERENCE_COLOR),
            ("current", "ecdf_current", CURRENT_COLOR),
        ):
            fig.add_scatter(
                x=d["ecdf_x"], y=d[key], name=name, mode="lines", line={"color": color, "width": 2, "shape": "hv"},
                showlegend=False, row=1, col=2,
            )  # fmt: skip
    fig.update_layout(barmode="overlay")
    title = f"{feature.name}: PSI {_num(feature.psi)}, KS {_num(feature.ks_statistic)} ({feature.ks_method or '—'})"
    fig = layout(fig, title, "share")
    # the legend above the subplot titles, not on them
    fig.update_layout(hovermode="closest", height=360, margin={"t": 90}, legend={"y": 1.18})
    fig.update_yaxes(title_text="F(x)", row=1, col=2, range=[0, 1.02])
    return fig


def _category_figure(feature: Any) -> go.Figure:
    d = feature.distribution
    cats = d.get("categories", [])
    ref_total = sum(d.get("reference", [])) or 1
    cur_total = sum(d.get("current", [])) or 1
    labels = [f"{c} (new)" if c in feature.unseen_categories else c for c in cats]
    fig = go.Figure()
    fig.add_bar(
        x=labels, y=[n / ref_total for n in d.get("reference", [])], name="reference", marker_color=REFERENCE_COLOR
    )
    fig.add_bar(
        x=labels,
        y=[n / cur_total for n in d.get("current", [])],
        name="current",
        marker_color=[DRIFT_COLOR if c in feature.unseen_categories else CURRENT_COLOR for c in cats],
    )
    unseen = f"; unseen: {', '.join(feature.unseen_categories)}" if feature.unseen_categories else ""
    fig = layout(fig, f"{feature.name}: PSI {_num(feature.psi)}, χ² p {_num(feature.p_value, '.2g')}{unseen}", "share")
    fig.update_layout(barmode="group", hovermode="closest", height=340, yaxis_tickformat=".0%")
    return fig


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "—" if value is None else format(value, fmt)


def heatmap_figure(over: Any, metric: str = "psi") -> go.Figure:
    """Feature × chunk heatmap of one metric (capped at 3× the threshold so small values keep their colour)."""
    matrix = over.matrix(metric)
    threshold = max((t["upper"] for t in over.thresholds.values()), default=0.1) if metric == "psi" else 0.1
    z = matrix.to_numpy(dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=z.clip(max=3 * threshold),
            x=[str(c)[:10] for c in matrix.columns],
            y=list(matrix.index),
            customdata=z,
            colorscale=[[0, "#f8fafc"], [1 / 3, "#fde68a"], [1, "#b91c1c"]],
            zmin=0,
            zmax=3 * threshold,
            colorbar={"title": metric.upper()},
            hovertemplate="%{y} · %{x}: %{customdata:.3f}<extra></extra>",
        )
    )
    fig = layout(fig, f"{metric.upper()} per {over.chunk} against the reference ({over.reference['label']})", "")
    fig.update_layout(hovermode="closest", height=max(280, 26 * len(matrix.index) + 110))
    return fig


def feature_lines_figure(over: Any, features: list[str], metric: str = "psi") -> go.Figure:
    """One line per chosen feature over time, each feature's threshold dotted, first crossings marked."""
    fig = go.Figure()
    v = over.values
    for i, name in enumerate(features):
        part = v[v["feature"] == name]
        color = PALETTE[i % len(PALETTE)]
        fig.add_scatter(x=part["chunk"], y=part[metric], name=name, mode="lines+markers", line={"color": color})
        if metric == over.metric:
            fig.add_scatter(
                x=part["chunk"], y=part["threshold"], name=f"{name} threshold", mode="lines",
                line={"color": color, "dash": "dot", "width": 1}, showlegend=False,
            )  # fmt: skip
            first = over.first_crossing.get(name)
            if first:
                hit = part[part["chunk"] == pd.Timestamp(first)]  # first is an ISO string, chunk a UTC timestamp
                fig.add_scatter(
                    x=hit["chunk"], y=hit[metric], mode="markers", marker={"size": 12, "color": color, "symbol": "x"},
                    name=f"{name} first crossed", showlegend=False,
                )  # fmt: skip
    return layout(fig, f"{metric.upper()} over time (dotted: threshold, ✕: first crossing)", metric.upper())


def performance_figure(perf: Any) -> go.Figure:
    """Estimated accuracy (CBPE) with its band, and the realised accuracy where labels arrived."""
    c = perf.chunks
    fig = go.Figure()
    if not c.empty:
        fig.add_scatter(
            x=c["chunk"], y=c["band_upper"], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"
        )
        fig.add_scatter(
            x=c["chunk"], y=c["band_lower"], mode="lines", line={"width": 0}, fill="tonexty",
            fillcolor="rgba(37, 99, 235, 0.15)", name="sampling band (±3 SE)", hoverinfo="skip",
        )  # fmt: skip
        fig.add_scatter(
            x=c["chunk"],
            y=c["estimated_accuracy"],
            name="estimated accuracy (CBPE)",
            line={"color": PALETTE[0], "dash": "dash"},
        )
        fig.add_scatter(
            x=c["chunk"],
            y=c["realised_accuracy"],
            name="realised accuracy",
            mode="lines+markers",
            line={"color": "#111827"},
        )
    fig = layout(fig, "Accuracy: realised (labels) and estimated without labels", "accuracy")
    fig.update_layout(yaxis_tickformat=".0%")
    return fig


def domain_classifier_figure(multivariate: dict[str, Any]) -> go.Figure:
    """Bars: which features separate the windows (drop in the domain classifier's AUC when shuffled)."""
    rows = sorted(multivariate.get("importance", []), key=lambda r: r["auc_drop"])
    fig = go.Figure(
        go.Bar(
            x=[r["auc_drop"] for r in rows], y=[r["feature"] for r in rows], orientation="h", marker_color=PALETTE[3]
        )
    )
    auc = multivariate.get("auc")
    title = "Domain classifier" + (
        f": AUC {auc:.3f} ({multivariate['ci_lower']:.3f}–{multivariate['ci_upper']:.3f})" if auc else ""
    )
    fig = layout(fig, title, "")
    fig.update_layout(hovermode="closest", height=max(240, 24 * len(rows) + 90), xaxis_title="AUC drop when shuffled")
    return fig


def reconstruction_figure(reconstruction: dict[str, Any]) -> go.Figure:
    """PCA reconstruction error per chunk (reference grey, current blue, alerts red ✕) and the band that decided."""
    chunks = pd.DataFrame(reconstruction.get("chunks") or [], columns=["chunk", "rows", "error", "period", "alert"])
    fig = go.Figure()
    for period, color in (("reference", REFERENCE_COLOR), ("current", CURRENT_COLOR)):
        part = chunks[chunks["period"] == period]
        fig.add_scatter(
            x=pd.to_datetime(part["chunk"], utc=True), y=part["error"], name=f"{period} chunks",
            mode="lines+markers", line={"color": color}, customdata=part["rows"],
            hovertemplate="%{x|%Y-%m-%d %H:%M}: error %{y:.3f} (%{customdata:,} rows)<extra></extra>",
        )  # fmt: skip
    alerts = chunks[chunks["alert"].eq(True)]
    if len(alerts):
        fig.add_scatter(
            x=pd.to_datetime(alerts["chunk"], utc=True), y=alerts["error"], name="alert (outside the band)",
            mode="markers", marker={"color": DRIFT_COLOR, "size": 11, "symbol": "x"}, hoverinfo="skip",
        )  # fmt: skip
    t = reconstruction.get("threshold") or {}
    for side in ("upper", "lower"):
        if t.get(side) is not None:
            fig.add_hline(
                y=t[side], line_dash="dash", line_color="#111827",
                annotation_text=f"{side} {t[side]:.3f} (reference mean {'+' if side == 'upper' else '−'} "
                f"{t['sigmas']:g}σ)", annotation_position="top left" if side == "upper" else "bottom left",
            )  # fmt: skip
    sigmas = t.get("sigmas", 3)
    title = f"PCA reconstruction error per {reconstruction.get('chunk', 'chunk')} (band: reference mean ± {sigmas:g}σ)"
    fig = layout(fig, title, "mean reconstruction error (σ units)")
    fig.update_layout(hovermode="closest", legend={"y": -0.18, "yanchor": "top"})
    return fig


def reconstruction_parts_figure(reconstruction: dict[str, Any], top: int = 8) -> go.Figure:
    """Bars: the features' and pairs' parts of the change in mean squared reconstruction error, largest first."""
    parts = [(f["feature"], f["contribution"], "feature") for f in reconstruction.get("feature_contributions", [])]
    parts += [
        (" × ".join(p["features"]), p["contribution"], "pair") for p in reconstruction.get("pair_contributions", [])
    ]
    parts = sorted(parts, key=lambda p: -abs(p[1]))[:top][::-1]  # plotly draws the first bar at the bottom
    colors = {"feature": PALETTE[3], "pair": PALETTE[1]}
    fig = go.Figure(
        go.Bar(
            x=[p[1] for p in parts], y=[p[0] for p in parts], orientation="h",
            marker_color=[colors[p[2]] for p in parts], customdata=[p[2] for p in parts],
            hovertemplate="%{y} (%{customdata}): %{x:+.3f}<extra></extra>",
        )
    )  # fmt: skip
    mse = reconstruction.get("mean_squared_error") or {}
    change = f": {mse['reference']:.2f} → {mse['current']:.2f}" if mse else ""
    fig = layout(fig, f"Mean squared error{change}: its parts", "")
    fig.update_layout(hovermode="closest", height=max(240, 26 * len(parts) + 110),
                      xaxis_title="part of the change (purple: feature, orange: pair)")  # fmt: skip
    return fig


def pair_density_figure(reconstruction: dict[str, Any]) -> go.Figure:
    """Heatmap: the top pair's share of rows per 2-D quantile bin, current minus reference (percentage points)."""
    pair = reconstruction.get("top_pair") or {}
    if not pair:
        return layout(go.Figure(), "No pair to show", "")
    x_name, y_name = pair["features"]
    diff = [[v * 100 for v in row] for row in pair["difference"]]
    span = max((abs(v) for row in diff for v in row), default=1.0) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=diff, x=_bin_labels(pair["edges_x"]), y=_bin_labels(pair["edges_y"]), zmid=0, zmin=-span, zmax=span,
            colorscale="RdBu_r", colorbar={"title": "pp"},
            hovertemplate=f"{x_name} %{{x}} · {y_name} %{{y}}: %{{z:+.2f}} pp<extra></extra>",
        )
    )  # fmt: skip
    fig = layout(fig, f"{x_name} × {y_name}: share of rows, current − reference (red: more now)", y_name)
    fig.update_layout(hovermode="closest", height=420, xaxis_title=x_name)
    return fig


def _bin_labels(edges: list[float]) -> list[str]:
    """'< 12.3', '12.3–20.1', …, '≥ 80.0': the quantile bins of one axis."""
    if not edges:
        return ["all"]
    inner = [f"{a:.3g}–{b:.3g}" for a, b in itertools.pairwise(edges)]
    return [f"< {edges[0]:.3g}", *inner, f"≥ {edges[-1]:.3g}"]
