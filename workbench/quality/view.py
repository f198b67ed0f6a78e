"""What the Model quality page shows, as Streamlit glue: the cached report (``run`` on the store for a
:class:`QualityRequest`), the run recorded once for the gate, and the page's sections drawn from the report.

No statistic is computed here; every number comes from :class:`workbench.quality.result.QualityReport`.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from workbench.app import ui
from workbench.ingest.lake import open_store
from workbench.quality import charts
from workbench.quality.request import DEFAULT_REFERENCE, DEFAULT_WINDOW, METRIC_NAMES, METRICS, QualityRequest
from workbench.quality.result import QualityReport
from workbench.quality.run import run
from workbench.sources import evidence
from workbench.sources.base import StoreSource
from workbench.sources.store import Store

__all__ = [
    "DEFAULT_REFERENCE",
    "DEFAULT_WINDOW",
    "METRICS",
    "METRIC_NAMES",
    "QualityRequest",
]  # what the page builds a request from
SHOW = {"dropped": st.error, "holds": st.success, "insufficient": st.warning}


@st.cache_data(show_spinner=False, max_entries=16)
def cached_report(path: str, mtime: float, request: QualityRequest) -> QualityReport:
    """The report of the store at ``path`` for ``request``, cached per modification time."""
    del mtime
    return run(StoreSource(open_store(path)), request)


def record(store: Store, report: QualityReport, request: QualityRequest) -> bool:
    """Record the report's evidence for the gate once per store, request and verdict in this session."""
    seen = st.session_state.setdefault("recorded", set())
    return evidence.record_once(store, report, seen, (request, report.verdict_text))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def verdict_section(report: QualityReport) -> None:
    """The verdict, its reasons, the rule it was held to, the warnings, and the chart of the thresholds."""
    word = report.verdict
    SHOW[word](f"**{word.upper()}** — {report.verdict_text}", icon=":material/verified:")
    w, r, s = report.window, report.reference, report.settings
    st.caption(
        f"Window **{w['label']}**: {w['rows']:,} predictions, {w['labelled']:,} labelled · reference "
        f"**{r['label']}**: {r['rows']:,}, {r['labelled']:,} labelled · dropped = a realised metric below the "
        f"reference − {s['band_sigmas']:g} standard errors (NannyML's sampling error at both sides' labelled counts) "
        f"· at least {s['min_labels']} labels · labels from feedback of kind {', '.join(s['label_kinds'])} · "
        f"calibration: {report.calibration.get('method', 'none')}"
    )
    for warning in report.warnings:
        st.warning(warning, icon=":material/warning:")
    if report.reasons:
        with st.expander("Reasons", expanded=word == "dropped"):
            st.markdown("\n".join(f"- {reason}" for reason in report.reasons))
    st.plotly_chart(charts.verdict_figure(report), width="stretch")


def metrics_table(report: QualityReport) -> pd.DataFrame:
    """Per model version and metric: realised, the CBPE estimate, and (ROC/PR AUC) the binning error bound."""
    rows = []
    for v in report.versions:
        for m in (*METRICS, "pr_auc", "brier", "ece"):
            bound = v["binning_error"].get(m)
            rows.append(
                {
                    "model version": v["model_version"],
                    "metric": METRIC_NAMES[m],
                    "realised": v["metrics"][m],
                    "estimated (CBPE)": v["estimated"].get(m),
                    "binning error ≤": bound,
                }
            )
    frame = pd.DataFrame(rows)
    for column in ("realised", "estimated (CBPE)", "binning error ≤"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column]).astype("float64")
    return frame


def versions_section(report: QualityReport) -> None:
    """Per model version: the confusion matrix; then every metric realised and estimated, the curves and the
    reliability diagram."""
    st.subheader("Per model version")
    if not report.versions:
        st.info("No scored predictions in the window.", icon=":material/info:")
        return
    labelled = [v for v in report.versions if v["labelled"] > 0]
    for col, v in zip(st.columns(max(min(len(labelled), 3), 1)), labelled[:3], strict=False):
        col.plotly_chart(charts.confusion_figure(v, f"{v['model_version']}: confusion matrix"), width="stretch")
    table = metrics_table(report)
    formats = {c: st.column_config.NumberColumn(format="%.3f") for c in table.columns[2:]}
    formats["binning error ≤"] = st.column_config.NumberColumn(
        format="%.4f", help="Bound of the area's error from the 1/1000 score bins vs scikit-learn on the rows"
    )
    ui.table(table, column_config=formats)
    if not labelled:
        st.info(
            "No labelled predictions in the window yet: the confusion matrix, the curves and the calibration "
            "need labels; the estimates (CBPE) above need none.",
            icon=":material/label_off:",
        )
        return
    roc, pr = st.columns(2)
    roc.plotly_chart(charts.curves_figure(report, "roc"), width="stretch")
    pr.plotly_chart(charts.curves_figure(report, "pr"), width="stretch")
    st.plotly_chart(charts.reliability_figure(report), width="stretch")


def over_time_section(report: QualityReport, metric: str) -> None:
    """Realised vs estimated ``metric`` per chunk with the band, and the chunks where the realised value left it."""
    st.subheader("Over time: realised vs estimated without labels (CBPE)")
    st.plotly_chart(charts.over_time_figure(report, metric), width="stretch")
    chunks = report.chunk_records()
    left = [str(c["chunk"])[:10] for c in chunks if c.get(f"within_band_{metric}") is False]
    if left:
        st.warning(
            f"Realised {METRIC_NAMES[metric]} outside its estimate's band in the chunks starting "
            f"{', '.join(left)}: the scores no longer mean what they meant on the reference (concept drift).",
            icon=":material/trending_down:",
        )
    st.caption(
        "The estimate assumes covariate shift only (the label given the score behaves as on the reference); "
        "under concept drift it stays where it was while the realised value falls, which is itself the signal."
    )


def downloads(report: QualityReport) -> None:
    """The report's JSON document and the chunks as CSV."""
    d1, d2, _ = st.columns([1, 1, 3])
    d1.download_button(
        "Report (JSON)",
        lambda: json.dumps(report.to_json(), indent=2),
        "quality.json",
        "application/json",
        icon=":material/download:",
        key="quality_json",
        on_click="ignore",
    )
    d2.download_button(
        "Chunks (CSV)",
        lambda: report.chunks.to_csv(index=False),
        "quality_chunks.csv",
        "text/csv",
        icon=":material/download:",
        key="quality_csv",
        on_click="ignore",
    )


def request_from(window: str, reference: str, chunk: str, sidebar: Any) -> QualityRequest:
    """The page's request: its window and reference texts with the sidebar's model versions, the chunks over
    the sidebar's window (all data when none is set)."""
    versions = tuple(sidebar.model_versions) if sidebar is not None else ()
    return QualityRequest(
        window=window,
        reference=reference,
        model_versions=versions,
        chunk=chunk,
        over_time=sidebar if sidebar is not None else "all",
    )
