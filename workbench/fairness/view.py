"""What the Fairness page shows, as data and as Streamlit glue: the cached audit (``run`` on the store for a
:class:`FairnessRequest`), the run recorded once for the gate, the group, disparity and version tables, and the
page's sections (verdict, groups, the tabs, downloads) drawn from the audit.

No statistic is computed here; every number comes from :class:`workbench.fairness.result.FairnessAudit`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from workbench.app import ui
from workbench.fairness.charts import (
    calibration_figure,
    group_rates_figure,
    ratio_over_time_figure,
    representation_figure,
    versions_figure,
)
from workbench.fairness.request import FairnessRequest
from workbench.fairness.result import FairnessAudit, load_settings
from workbench.fairness.run import run
from workbench.fairness.tradeoff_charts import mitigation_figure, pareto_figure
from workbench.fairness.tradeoffs import CONSTRAINT_DISPARITY, DISPARITIES
from workbench.ingest.lake import open_store
from workbench.sources import evidence
from workbench.sources.base import StoreSource
from workbench.sources.store import Store
from workbench.stats.fairness import FAIRLEARN_DISPARITIES, GROUP_METRICS, HEADLINE_DISPARITIES, METRIC_NAMES
from workbench.stats.fairness_verdict import four_fifths_note

# what the page builds a request from
__all__ = ["CONSTRAINTS", "DISPARITIES", "GROUP_METRICS", "METRIC_NAMES", "FairnessRequest", "load_settings"]
CONSTRAINTS = tuple(CONSTRAINT_DISPARITY)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_audit(
    path: str, mtime: float, request: FairnessRequest, _progress: Callable[..., None] | None = None
) -> FairnessAudit:
    """The audit of the store at ``path`` for ``request``, cached per modification time (``_progress`` not hashed)."""
    del mtime
    say = (lambda text: _progress(label=f"Fairness audit: {text}…")) if _progress else None
    return run(StoreSource(open_store(path)), request, progress=say)


def record(store: Store, audit: FairnessAudit, request: FairnessRequest) -> bool:
    """Record the audit's evidence for the gate once per store, request and verdict in this session."""
    seen = st.session_state.setdefault("recorded", set())
    return evidence.record_once(store, audit, seen, (request, audit.verdict_text))


def population_file(upload: Any) -> Any:
    """The uploaded reference population saved in this session's folder (None when nothing is uploaded)."""
    return None if upload is None else ui.save_upload(upload, "population")


def _ci(pair: list[float | None]) -> str | None:
    """An interval as text, or None (shown "—") when it does not apply (the reference's ratio to itself)."""
    low, high = pair
    return None if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def ci_name(audit: FairnessAudit) -> str:
    """The intervals' column name at the audit's level, from the settings ("95% CI" by default)."""
    return f"{audit.settings.get('confidence', 0.95):.0%} CI"


def group_table(audit: FairnessAudit, metric: str) -> pd.DataFrame:
    """One row per group: status, sizes, the chosen rate with its CI, its ratio to the reference with CI and
    adjusted p, then selection rate, TPR and FPR, and the group's flags in words."""
    name = METRIC_NAMES[metric]
    ci = ci_name(audit)
    flags: dict[str, list[str]] = {}
    for flag in audit.flags:
        flags.setdefault(flag.get("group"), []).append(flag["kind"].replace("_", " "))
    rates = audit.by_group
    rows = []
    for g in audit.groups:
        comparison = g["vs_reference"].get(metric, {})
        rate = rates.loc[g["group"]]
        rows.append(
            {
                "group": g["group"],
                "status": g["status"],
                "n": g["n"],
                "labelled": g["n_labelled"],
                "positives": g["positives"],
                "negatives": g["negatives"],
                name: rate[metric],
                f"{name} {ci}": _ci(g["ci"][metric]),
                "ratio to reference": comparison.get("ratio"),
                f"ratio {ci}": _ci(comparison.get("ratio_ci", [None, None])),
                "adjusted p": comparison.get("p_adjusted"),
                **{METRIC_NAMES[m]: rate[m] for m in ("selection_rate", "tpr", "fpr") if m != metric},
                "flags": ", ".join(sorted(set(flags.get(g["group"], [])))),
            }
        )
    frame = pd.DataFrame(rows)
    text = {"group", "status", "flags", f"{name} {ci}", f"ratio {ci}", "n", "labelled", "positives", "negatives"}
    for column in frame.columns.difference(list(text)):
        frame[column] = pd.to_numeric(frame[column]).astype("float64")  # None → NaN: shown blank, formatted
    return frame


def shown_group_columns(table: pd.DataFrame, metric: str) -> list[str]:
    """The columns of :func:`group_table` the page shows, so it fits without scrolling sideways: the group, its
    status and sizes, the chosen rate with its CI, the comparison with the reference, and the flags when any
    group has one. Positives, negatives and the other rates are behind an expander (and in the CSV)."""
    name = METRIC_NAMES[metric]
    levels = [c[len(name) + 1 :] for c in table.columns if c.startswith(f"{name} ") and c.endswith("% CI")]
    ci = levels[0] if levels else "95% CI"
    shown = ["group", "status", "n", "labelled", name, f"{name} {ci}", "ratio to reference", f"ratio {ci}",
             "adjusted p", "flags"]  # fmt: skip
    if table.empty or not table["flags"].astype(bool).any():
        shown.remove("flags")
    return [c for c in shown if c in table.columns]


def disparity_table(audit: FairnessAudit) -> pd.DataFrame:
    """fairlearn's disparities with their bootstrap intervals (and the per-rate between-groups ones)."""
    rows = []
    headline = [n for n in FAIRLEARN_DISPARITIES if n in audit.disparities]
    for name in [*headline, *(n for n in audit.disparities if n not in headline)]:
        value = audit.disparities[name]
        low, high = (audit.disparity_intervals.get(name) or [None, None])[:2]
        rows.append({"disparity": name, "value": value, ci_name(audit): _ci([low, high])})
    return pd.DataFrame(rows)


def versions_table(audit: FairnessAudit) -> pd.DataFrame:
    """Every disparity for champion and challenger, the change, its bootstrap CI and whether it is significant."""
    versions = audit.versions or {}
    order = {name: i for i, name in enumerate(FAIRLEARN_DISPARITIES)}
    changes = sorted(versions.get("disparities", []), key=lambda d: order.get(d["name"], len(order)))
    return pd.DataFrame(
        [
            {
                "disparity": d["name"],
                versions.get("champion", "champion"): d["champion"],
                versions.get("challenger", "challenger"): d["challenger"],
                "change": d["change"],
                f"change {ci_name(audit)}": _ci(d["change_ci"]),
                "significant": d["significant"],
            }
            for d in changes
        ]
    )


RATE_HELP = {
    "selection rate": "Share of the group's predictions that are positive (labelled or not)",
    "accuracy": "Share of the group's labelled predictions that are right",
    "TPR": "True positive rate (recall): share of the group's actual positives predicted positive",
    "FPR": "False positive rate: share of the group's actual negatives predicted positive",
    "FNR": "False negative rate (1 − TPR): share of the group's actual positives predicted negative",
    "TNR": "True negative rate (1 − FPR): share of the group's actual negatives predicted negative",
    "precision": "Share of the group's positive predictions that are actual positives",
}
COLUMN_HELP = {
    "group": "The group (an intersection when several attributes are picked: a × b)",
    "status": "fail: a verdict rate outside the band of the reference and significant; pass; insufficient data: "
    "too few positives or negatives to judge; reference: the group the others are compared to",
    "n": "Predictions in the group",
    "labelled": "Predictions in the group with a label (feedback)",
    "positives": "Labelled predictions whose label is positive",
    "negatives": "Labelled predictions whose label is negative",
    "ratio to reference": "The group's rate divided by the reference group's (1 = equal)",
    "ratio 95% CI": "Bootstrap interval of the ratio to the reference",
    "adjusted p": "p-value of the difference from the reference (two-proportion z-test), adjusted over the groups "
    "and verdict rates (Holm by default, the [fairness] adjust setting)",
    "flags": "What else was flagged for the group: a disparity, too few labels, an under-represented group …",
    "disparity": "fairlearn's between-groups disparity: the largest difference (max − min) or the smallest ratio "
    "(min / max) of a rate across the groups",
    "value": "The disparity on the audited rows",
    "95% CI": "Bootstrap interval",
    "change": "Challenger's disparity minus champion's",
    "change 95% CI": "Bootstrap interval of the change",
    "significant": "The change's interval excludes 0",
    "predictions": "Predictions in the group",
    "share_predictions": "The group's share of all predictions",
    "share_labelled": "The group's share of the labelled predictions (the feedback a retrain would learn from)",
    "coverage": "Share of the group's predictions that are labelled",
    "target_share": "The share the group should have: the reference population's, else its share of predictions",
    "under_represented": "Labelled share below the threshold share of the target",
    "oversampling_factor": "How much to oversample the group's labelled rows to reach its target share",
}


def column_help(column: str) -> str | None:
    """The header help of a fairness table's column: the rate abbreviations spelled out (TPR, FPR, FNR …), the
    interval and p-value columns said in words."""
    interval = re.fullmatch(r"(?:(.*) )?\d+(?:\.\d+)?% CI", column)  # any level: the settings' confidence
    if interval:
        of = interval.group(1) or ""
        if of in RATE_HELP:
            return f"Wilson interval of the group's {of}"
        return COLUMN_HELP.get(f"{of} 95% CI".strip())
    return COLUMN_HELP.get(column) or RATE_HELP.get(column)


def number_format(frame: pd.DataFrame) -> dict[str, Any]:
    """Streamlit column formats with each header's :func:`column_help`: rates and ratios to 3 decimals, p-values
    in 2 significant digits."""
    formats: dict[str, Any] = {}
    for column in frame.columns:
        if column in ("n", "labelled", "positives", "negatives"):
            formats[column] = st.column_config.NumberColumn(format="localized", help=column_help(column))
        elif column.split()[-1] == "p":
            formats[column] = st.column_config.NumberColumn(format="%.2g", help=column_help(column))
        elif pd.api.types.is_float_dtype(frame[column]):
            formats[column] = st.column_config.NumberColumn(format="%.3f", help=column_help(column))
        elif column_help(column):
            formats[column] = st.column_config.Column(help=column_help(column))
    return formats


# --- the page's sections ------------------------------------------------------------------------------


def verdict_section(audit: FairnessAudit) -> None:
    """The verdict, each failing comparison as a bullet, what it was held to (from the audit's settings), the
    warnings and the four headline disparities."""
    show = {"fail": st.error, "pass": st.success, "insufficient": st.warning}[audit.verdict]
    show(f"**{audit.verdict.upper()}** — {audit.verdict_text[len(audit.verdict) + 2 :]}", icon=":material/balance:")
    if audit.verdict == "fail":  # every failing comparison, one per line (the sentence names the groups)
        st.markdown("\n".join(f"- {reason}" for reason in audit.reasons))
    s, labels = audit.settings, audit.labels
    st.caption(
        f"Reference group: **{audit.reference_group}** · {labels['predictions']:,} predictions, "
        f"{labels['labelled']:,} labelled ({labels['conflicting_traces']:,} with conflicting labels, "
        f"{labels['conflicts_dropped']:,} dropped) · fail = ratio outside ×{1 / s['max_ratio']:.2f}–"
        f"{s['max_ratio']:g} of the reference and significant after {s['adjust']} (α={s['alpha']:g}) · "
        f"minimum {s['min_positives']} positives / {s['min_negatives']} negatives per group"
    )
    for warning in audit.warnings:
        st.warning(warning, icon=":material/warning:")
    for col, name in zip(st.columns(len(HEADLINE_DISPARITIES)), HEADLINE_DISPARITIES, strict=True):
        value = audit.disparities.get(name)
        low, high = (audit.disparity_intervals.get(name) or [None, None])[:2]
        col.metric(name.replace("_", " "), "n/a" if value is None else f"{value:.3f}",
                   help=f"{ci_name(audit)[:-3]} bootstrap interval [{low:.3f}, {high:.3f}]" if low is not None
                   else None)  # fmt: skip


def groups_section(audit: FairnessAudit, metric: str) -> None:
    """The group rates chart, the group table (all columns behind an expander), the flags and every disparity."""
    st.subheader("Groups")
    st.plotly_chart(group_rates_figure(audit, metric), width="stretch")
    table = group_table(audit, metric)
    formats = number_format(table)
    ui.table(table, column_order=shown_group_columns(table, metric), column_config=formats)
    with st.expander("All columns: positives and negatives, the other rates"):
        ui.table(table, column_config=formats)
    if audit.flags:
        with st.expander(f"Flags ({len(audit.flags)})", expanded=audit.verdict != "pass"):
            for flag in audit.flags:
                st.markdown(f"- **{flag['kind'].replace('_', ' ')}** — {flag['message']}")
    with st.expander("All disparities (fairlearn's between-groups difference and ratio) and the four-fifths rule"):
        disparities = disparity_table(audit)
        ui.table(disparities, column_config=number_format(disparities))
        st.caption(four_fifths_note(audit.settings.get("four_fifths", 0.8)))


def over_time_tab(audit: FairnessAudit, metric: str) -> None:
    """Each group's ratio to the reference per time chunk, and the groups whose gap widens."""
    if not audit.over_time:
        st.info("No timestamps in scope.")
        return
    st.plotly_chart(ratio_over_time_figure(audit, metric), width="stretch")
    widening = [t for t in audit.over_time["trends"] if t["widening"]]
    if widening:
        st.warning("Widening: " + "; ".join(f"{t['group']} ({METRIC_NAMES[t['metric']]})" for t in widening))


def representation_tab(audit: FairnessAudit) -> None:
    """Who the labelled feedback represents: the chart, the fit to the predictions and the table per group."""
    st.plotly_chart(representation_figure(audit), width="stretch")
    rep = audit.representation
    fit = rep["labelled_vs_predictions"]
    st.caption(
        f"Labelled feedback vs predictions: JS distance {fit['js_distance'] or 0:.3f}, chi-square "
        f"{fit['statistic'] or 0:,.1f} (df {fit['df']}, p={fit['p_value'] if fit['p_value'] is not None else 'n/a'})."
        f" A group is under-represented when its labelled share is below {1 - rep['threshold']:.0%} of its target "
        f"share ({rep['target']}); the oversampling factor restores it."
    )
    groups = pd.DataFrame(
        [{k: g[k] for k in ("group", "predictions", "labelled", "share_predictions", "share_labelled", "coverage",
                            "target_share", "under_represented", "oversampling_factor")} for g in rep["groups"]],
    )  # fmt: skip
    ui.table(groups, column_config={c: st.column_config.Column(help=column_help(c)) for c in groups.columns})


def versions_tab(audit: FairnessAudit) -> None:
    """Champion vs challenger on the period both served: the chart and every disparity's change."""
    if not (audit.versions and len(audit.versions.get("per_version", {})) == 2):
        st.info("Needs two model versions that served at the same time.")
        return
    v = audit.versions
    st.caption(f"{v['champion']} vs {v['challenger']} on the period both served "
               f"({v['period']['from'][:10]} – {v['period']['to'][:10]}).")  # fmt: skip
    st.plotly_chart(versions_figure(audit), width="stretch")
    changes = versions_table(audit)
    ui.table(changes, column_config=number_format(changes))


def calibration_tab(audit: FairnessAudit) -> None:
    """Observed positive rate vs mean score per decile and group."""
    if audit.calibration and audit.calibration.get("groups"):
        st.plotly_chart(calibration_figure(audit), width="stretch")
    else:
        st.info("No scores in scope.")


def downloads(audit: FairnessAudit) -> None:
    """The audit's JSON document and the group table as CSV."""
    d1, d2, _ = st.columns([1, 1, 3])
    d1.download_button("Audit (JSON)", lambda: json.dumps(audit.to_json(), indent=2), "fairness.json",
                       "application/json", icon=":material/download:", key="fair_json", on_click="ignore")  # fmt: skip
    d2.download_button("Groups (CSV)", audit.groups_csv, "fairness_groups.csv", "text/csv",
                       icon=":material/download:", key="fair_csv", on_click="ignore")  # fmt: skip


# --- trade-offs: model versions on accuracy vs disparity, the mitigation preview ---------------------------

VERDICT_BOXES = {"better": st.success, "reduces": st.success, "no_difference": st.info, "no_gain": st.info,
                 "worse": st.warning, "tradeoff": st.warning, "insufficient": st.warning}  # fmt: skip


def _verdict_box(section: dict[str, Any]) -> None:
    """A section's verdict word in capitals, then its sentence (no st.error: that is the audit's own verdict)."""
    word, text = section["verdict"], section["verdict_text"]
    rest = text.split(": ", 1)[1] if ": " in text else text
    VERDICT_BOXES[word](f"**{word.replace('_', ' ').upper()}** — {rest}", icon=":material/balance:")


def comparison_table(audit: FairnessAudit) -> pd.DataFrame:
    """One row per model version: labelled rows, accuracy and the disparity with their intervals, on the front."""
    c = audit.comparison or {"versions": [], "disparity": "disparity"}
    ci, name = ci_name(audit), c["disparity"].replace("_", " ")
    return pd.DataFrame(
        [
            {
                "version": p["version"],
                "labelled": p["n_labelled"],
                "accuracy": p["accuracy"],
                f"accuracy {ci}": _ci(p["accuracy_ci"]),
                name: p["disparity"],
                f"{name} {ci}": _ci(p["disparity_ci"]),
                "on the Pareto front": p["on_front"],
            }
            for p in c["versions"]
        ]
    )


def thresholds_table(audit: FairnessAudit) -> pd.DataFrame:
    """One row per group: selection rate, TPR, FPR and accuracy before → after, then the rule in words."""
    m = audit.mitigation or {}
    rules = {r["group"]: r["rule"] for r in m.get("thresholds", [])}
    rows = []
    for g in m.get("groups", []):
        row: dict[str, Any] = {"group": g["group"], "labelled": g["n"]}
        for metric in ("selection_rate", "tpr", "fpr", "accuracy"):
            for when in ("before", "after"):
                row[f"{METRIC_NAMES[metric]} {when}"] = g[f"{metric}_{when}"]
        rows.append({**row, "rule": rules.get(g["group"])})
    return pd.DataFrame(rows)


def tradeoffs_tab(audit: FairnessAudit) -> None:
    """The model comparison (verdict, scatter with the front, table) and the mitigation preview (the plain
    statement that it is a preview, verdict, before/after chart, thresholds with their downloads)."""
    st.markdown("##### Model versions: accuracy vs disparity")
    if audit.comparison:
        _verdict_box(audit.comparison)
        st.caption(audit.comparison["note"])
        st.plotly_chart(pareto_figure(audit), width="stretch")
        ui.table(comparison_table(audit), column_config=number_format(comparison_table(audit)))
    else:
        st.info("Needs predictions with a model version.")
    st.markdown("##### Mitigation preview: group thresholds (post-processing, not a retrained model)")
    m = audit.mitigation
    if not m:
        st.info("Pick a constraint above to preview fairlearn's ThresholdOptimizer.")
        return
    st.info(m["note"], icon=":material/info:")
    _verdict_box(m)
    if not m["thresholds"]:
        return
    st.plotly_chart(mitigation_figure(audit), width="stretch")
    table = thresholds_table(audit)
    ui.table(table, column_config=number_format(table))
    d1, d2, _ = st.columns([1, 1, 3])
    document = {k: m[k] for k in ("constraint", "verdict", "verdict_text", "note", "operator", "thresholds")}
    d1.download_button("Thresholds (JSON)", lambda: json.dumps(document, indent=2), "fairness_thresholds.json",
                       "application/json", icon=":material/download:", key="fair_thr_json",
                       on_click="ignore")  # fmt: skip
    d2.download_button("Thresholds (CSV)", audit.thresholds_csv, "fairness_thresholds.csv", "text/csv",
                       icon=":material/download:", key="fair_thr_csv", on_click="ignore")  # fmt: skip
