"""Figures for the retrain gate: group composition of the retraining set before and after curation."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from workbench.core.plotting import PALETTE, layout


def composition_figure(before: dict[str, Any], after: dict[str, Any], attribute: str) -> go.Figure:
    """Grouped bars: each group's share of the set before and after curation (shares in %)."""
    groups = sorted(set(before.get(attribute, {})) | set(after.get(attribute, {})))
    fig = go.Figure()
    for name, comp, color in (("before", before, PALETTE[7]), ("after", after, PALETTE[0])):
        shares = [100 * comp.get(attribute, {}).get(g, 0.0) for g in groups]
        fig.add_bar(
            x=groups,
            y=shares,
            name=f"{name} ({comp['rows']:,} rows)",
            marker_color=color,
            text=[f"{s:.1f}%" for s in shares],
            textposition="outside",
        )
    fig = layout(fig, f"Composition by {attribute}", "share of rows (%)")
    fig.update_layout(barmode="group", hovermode="closest", height=320)
    return fig
