"""The standalone drift report: one HTML file with the verdict, the table and the charts, no raw rows.

Charts are Plotly figures built from the result's aggregates (shares per bin, ECDF points, metric
values per chunk), so the file holds numbers a reader sees, never the data. plotly.js is embedded by
default (about 4.8 MB), so the file opens with no network, on a machine that cannot reach a CDN, and
archives as it was; ``embed_plotlyjs=False`` (``workbench drift --html-cdn``) loads it from plotly's CDN
instead (a ~100 KB file whose charts need the network). The page's download and ``workbench drift --html``
both call :func:`html_report`.
"""

from __future__ import annotations

import html
from typing import Any

from workbench.drift import charts
from workbench.drift.reconstruction import reconstruction_caption
from workbench.drift.result import DriftResult, rate_lines

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#111827}
h1{font-size:1.5rem} h2{font-size:1.15rem;margin-top:2rem} .verdict{font-size:1.1rem;padding:.6rem .9rem;
border-radius:6px;background:#f1f5f9} .drift{background:#fee2e2} table{border-collapse:collapse;width:100%;
font-size:.85rem} th,td{padding:.25rem .5rem;border-bottom:1px solid #e5e7eb;text-align:right} th:first-child,
td:first-child{text-align:left} tr.hit td{color:#b91c1c;font-weight:600} .muted{color:#6b7280;font-size:.85rem}
"""
COLUMNS = [
    ("name", "feature", None), ("type", "type", None), ("drift", "drift", None), ("psi", "PSI", ".3f"),
    ("js_distance", "JS", ".3f"), ("wasserstein", "W/σ", ".3f"), ("test", "test", None),
    ("statistic", "statistic", ".4g"),
    ("p_value", "p", ".2g"), ("p_adjusted", "p adj (BH)", ".2g"), ("ks_method", "KS", None),
    ("n_reference", "n ref", ",d"), ("n_current", "n cur", ",d"),
    ("missing_share_reference", "missing ref", ".1%"), ("missing_share_current", "missing cur", ".1%"),
]  # fmt: skip


def _cell(value: Any, fmt: str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return html.escape(format(value, fmt) if fmt else str(value))


def _table(result: DriftResult) -> str:
    head = "".join(f"<th>{label}</th>" for _, label, _ in COLUMNS) + "<th>unseen categories</th>"
    rows = []
    for f in result.ordered:
        data = f.to_dict(with_distribution=False)
        cells = "".join(f"<td>{_cell(data[key], fmt)}</td>" for key, _, fmt in COLUMNS)
        unseen = html.escape(", ".join(f.unseen_categories))
        rows.append(f"<tr class='{'hit' if f.drift else ''}'>{cells}<td>{unseen}</td></tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def html_report(
    result: DriftResult, over_time: Any = None, performance: Any = None, embed_plotlyjs: bool = True
) -> str:
    """The drift report as one self-contained HTML document (verdict, statistics table, charts; no raw rows);
    ``embed_plotlyjs=False``: plotly.js from its CDN (smaller, needs the network to draw the charts)."""
    first = [True]

    def figure(fig: Any) -> str:
        include = (True if embed_plotlyjs else "cdn") if first[0] else False
        first[0] = False
        return fig.to_html(full_html=False, include_plotlyjs=include, config={"displaylogo": False})

    s = result.summary
    parts = [
        f"<h1>Drift report</h1><p class='muted'>reference: {html.escape(str(result.reference.get('label')))} "
        f"({result.reference.get('rows', 0):,} rows) · current: {html.escape(str(result.current.get('label')))} "
        f"({result.current.get('rows', 0):,} rows) · verdict rule: {s.get('rule')} · KS {s.get('ks_method')}</p>",
        f"<p class='verdict {'drift' if result.verdict == 'drift' else ''}'>{html.escape(result.verdict_text)}</p>",
        figure(charts.psi_bars_figure(result)),
        "<h2>All statistics</h2>",
        _table(result),
    ]
    extras = rate_lines(result)
    if extras:
        parts.append("<h2>Prediction and label drift</h2><p>" + html.escape("; ".join(extras)) + "</p>")
    rc = result.reconstruction
    if rc or (result.multivariate and result.multivariate.get("auc") is not None):
        parts.append("<h2>Multivariate drift</h2>")
    if rc:
        css = "verdict drift" if rc["verdict"] == "drift" else "verdict"
        parts.append(f"<p class='{css}'>{html.escape(rc['verdict_text'])}</p>")
        parts.append("<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in rc["reasons"]) + "</ul>")
        if rc["chunks"]:
            parts += [f"<p class='muted'>{html.escape(reconstruction_caption(rc))}</p>",
                      figure(charts.reconstruction_figure(rc))]  # fmt: skip
    if result.multivariate and result.multivariate.get("auc") is not None:
        parts.append(figure(charts.domain_classifier_figure(result.multivariate)))
    if rc and rc["pair_contributions"]:
        parts += [figure(charts.reconstruction_parts_figure(rc)), figure(charts.pair_density_figure(rc))]
    parts.append("<h2>Distributions</h2>")
    for f in result.ordered:
        if f.distribution:
            parts.append(figure(charts.distribution_figure(f)))
    if over_time is not None:
        parts += ["<h2>Drift over time</h2>", figure(charts.heatmap_figure(over_time))]
    if performance is not None and not performance.chunks.empty:
        parts += [
            "<h2>Performance</h2>",
            figure(charts.performance_figure(performance)),
            f"<p class='muted'>{html.escape(performance.assumption)}</p>",
        ]
    if result.warnings:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in result.warnings) + "</ul>")
    body = "\n".join(parts)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Drift report</title><style>{STYLE}</style>"
        f"</head><body>{body}</body></html>"
    )
