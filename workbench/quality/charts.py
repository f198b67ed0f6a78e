"""Plotly figures of a :class:`workbench.quality.result.QualityReport`: the verdict's metrics against their
thresholds, the confusion matrix, ROC and precision–recall curves, the reliability diagram, and realised vs
estimated (CBPE) per chunk with the estimate's band. They draw results only (no queries, no Streamlit)."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from workbench.core.plotting import PALETTE, layout
from workbench.quality.request import METRIC_NAMES

DROPPED, HOLDS, MUTED = "#dc2626", "#16a34a", "#9ca3af"


def _values(values: Any) -> list[float | None]:
    return [None if v is None or (isinstance(v, float) and not np.isfinite(v)) else v for v in values]


def verdict_figure(report: Any) -> go.Figure:
    """Each metric of the window (dot, red when it dropped) beside the reference's and the band's lower end that
    decided (the red tick: the window's value below it is a drop)."""
    rows = list(report.comparisons)[::-1]
    names = [METRIC_NAMES[c["metric"]] for c in rows]
    fig = go.Figure()
    fig.add_scatter(
        x=_values([c["reference"] for c in rows]),
        y=names,
        mode="markers",
        name="reference",
        marker={"color": MUTED, "size": 12, "symbol": "diamond"},
    )
    fig.add_scatter(
        x=_values([c["threshold"] for c in rows]),
        y=names,
        mode="markers",
        name=f"threshold (band's lower end, {report.settings['band_sigmas']:g} SE)",
        marker={"color": DROPPED, "size": 18, "symbol": "line-ns-open", "line": {"width": 3}},
    )
    fig.add_scatter(
        x=_values([c["estimated"] for c in rows]),
        y=names,
        mode="markers",
        name="estimated (CBPE)",
        marker={"color": PALETTE[0], "size": 11, "symbol": "circle-open", "line": {"width": 2}},
    )
    fig.add_scatter(
        x=_values([c["current"] for c in rows]),
        y=names,
        mode="markers",
        name="window (realised)",
        marker={"color": [DROPPED if c["dropped"] else HOLDS for c in rows], "size": 12},
    )
    fig = layout(fig, f"{report.window['label']} vs reference {report.reference['label']}", "")
    fig.update_layout(hovermode="closest", height=300, xaxis={"title": "value", "range": [0, 1.02]})
    return fig


def confusion_figure(summary: dict[str, Any], title: str) -> go.Figure:
    """The confusion matrix of a summary (realised counts; rows: actual label, columns: prediction)."""
    c = summary["confusion"]
    z = [[c["tn"], c["fp"]], [c["fn"], c["tp"]]]
    total = max(sum(c.values()), 1)
    text = [
        [f"{name}<br>{v:,.0f} ({v / total:.0%})" for name, v in zip(names, row, strict=True)]
        for names, row in zip((("TN", "FP"), ("FN", "TP")), z, strict=True)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=["predicted 0", "predicted 1"],
            y=["actual 0", "actual 1"],
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
        )
    )
    fig = layout(fig, title, "")
    fig.update_layout(height=300, hovermode="closest", yaxis={"autorange": "reversed"})
    return fig


def _slices(report: Any) -> list[tuple[str, dict[str, Any]]]:
    versions = [(v["model_version"], v) for v in report.versions if v["labelled"] > 0]
    return versions if len(versions) > 1 else [("window", report.window)]


def curves_figure(report: Any, kind: str = "roc") -> go.Figure:
    """ROC (``kind="roc"``) or precision–recall curves per model version, with each area in the legend."""
    fig = go.Figure()
    for i, (name, s) in enumerate(_slices(report)):
        curve, area = s["curves"][kind], s["metrics"]["roc_auc" if kind == "roc" else "pr_auc"]
        x, y = (curve["fpr"], curve["tpr"]) if kind == "roc" else (curve["recall"], curve["precision"])
        label = f"{name} ({'AUC' if kind == 'roc' else 'AP'} {area:.3f})" if area is not None and area == area else name
        fig.add_scatter(
            x=_values(list(x)), y=_values(list(y)), mode="lines", name=label, line={"color": PALETTE[i % len(PALETTE)]}
        )
    if kind == "roc":
        fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": MUTED, "dash": "dot"})
    title = "ROC curve" if kind == "roc" else "Precision–recall curve"
    fig = layout(fig, title, "true positive rate" if kind == "roc" else "precision")
    fig.update_layout(
        hovermode="closest",
        xaxis_title="false positive rate" if kind == "roc" else "recall",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1.02],
    )
    return fig


def reliability_figure(report: Any) -> go.Figure:
    """Observed positive rate vs mean score per score bin with Wilson intervals, per model version; the diagonal
    is perfect calibration. ECE and Brier score in the legend."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated", line={"color": MUTED, "dash": "dot"})
    for i, (name, s) in enumerate(_slices(report)):
        r, m = s["reliability"], s["metrics"]
        rate, lower, upper = (np.asarray(_values(list(r[k])), dtype=float) for k in ("positive_rate", "lower", "upper"))
        ece, brier = m["ece"], m["brier"]
        label = name if ece is None or ece != ece else f"{name} (ECE {ece:.3f}, Brier {brier:.3f})"
        fig.add_scatter(
            x=_values(list(r["mean_score"])),
            y=_values(list(rate)),
            mode="lines+markers",
            name=label,
            line={"color": PALETTE[i % len(PALETTE)]},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": _values(list(upper - rate)),
                "arrayminus": _values(list(rate - lower)),
            },
        )
    fig = layout(fig, "Reliability diagram (95% Wilson intervals)", "observed positive rate")
    fig.update_layout(hovermode="closest", xaxis_title="mean score", xaxis_range=[0, 1], yaxis_range=[0, 1.02])
    return fig


def over_time_figure(report: Any, metric: str = "f1") -> go.Figure:
    """Per chunk: the CBPE estimate of ``metric`` with its band (± the settings' standard errors), and the
    realised value where labels arrived (red where it left the band)."""
    c = report.chunks
    name = METRIC_NAMES[metric]
    fig = go.Figure()
    if not c.empty:
        fig.add_scatter(
            x=c["chunk"],
            y=_values(c[f"upper_{metric}"]),
            mode="lines",
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
        )
        fig.add_scatter(
            x=c["chunk"],
            y=_values(c[f"lower_{metric}"]),
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(37, 99, 235, 0.15)",
            hoverinfo="skip",
            name=f"band (± {report.settings['band_sigmas']:g} SE)",
        )
        fig.add_scatter(
            x=c["chunk"],
            y=_values(c[f"estimated_{metric}"]),
            name=f"estimated {name} (CBPE)",
            line={"color": PALETTE[0], "dash": "dash"},
        )
        inside = c[f"within_band_{metric}"]
        colors = [DROPPED if v is False else "#111827" for v in inside]
        fig.add_scatter(
            x=c["chunk"],
            y=_values(c[f"realised_{metric}"]),
            name=f"realised {name}",
            mode="lines+markers",
            line={"color": "#111827"},
            marker={"color": colors, "size": 8},
        )
    fig = layout(fig, f"{name}: realised (labels) and estimated without labels, per {report.chunk}", name)
    return fig
