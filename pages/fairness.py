"""Fairness: does the model, or the feedback we are about to train on, treat some group worse?"""

from __future__ import annotations

import json

import streamlit as st

from workbench.app import ui
from workbench.fairness.audit import load_settings, read_population, with_overrides
from workbench.fairness.charts import (
    calibration_figure,
    group_rates_figure,
    ratio_over_time_figure,
    representation_figure,
    versions_figure,
)
from workbench.fairness.view import (
    cached_audit,
    disparity_table,
    group_table,
    number_format,
    record_once,
    shown_group_columns,
    versions_table,
)
from workbench.stats.fairness import GROUP_METRICS, METRIC_NAMES
from workbench.stats.fairness_verdict import FOUR_FIFTHS_NOTE

ui.page_header(
    "Fairness",
    "Group and intersectional error rates with intervals and tests against a reference group, fairlearn's "
    "disparities, who the feedback represents, the gap over time and champion vs challenger.",
)

store = ui.require_store()
with ui.user_errors():
    summary = ui.summary()
    settings = load_settings()
window = ui.active_window()

with st.container(border=True):
    c1, c2, c3, c4 = st.columns([2, 1.3, 1.3, 1.4])
    choices = summary.sensitive or [c for c in summary.categorical if c not in ("country",)][:4]
    if not choices:
        st.info(
            "No sensitive attributes declared: set `sensitive` in the roles when ingesting.", icon=":material/group:"
        )
        st.stop()
    default = ["region"] if "region" in choices else choices[:1]
    sensitive = c1.multiselect("Sensitive attributes (several = intersections)", choices, default=default,
                               key="fair_sensitive")  # fmt: skip
    metric = c2.selectbox("Metric", GROUP_METRICS, index=GROUP_METRICS.index("fpr"), format_func=METRIC_NAMES.get,
                          key="fair_metric")  # fmt: skip
    reference = c3.text_input("Reference group", value="", placeholder="largest", key="fair_reference",
                              help="A group's name, e.g. north, or 'north × 18-25' for an intersection.")  # fmt: skip
    chunk = c4.radio("Over time by", ["week", "day"], horizontal=True, key="fair_chunk")
    versions = [v["model_version"] for v in summary.model_versions]
    d1, d2, d3 = st.columns([1.3, 1.3, 2.4])
    champion = d1.selectbox("Champion", ["(first)", *versions], key="fair_champion")
    challenger = d2.selectbox("Challenger", ["(newest)", *versions], key="fair_challenger")
    population_file = d3.file_uploader("Reference population (CSV group,share or TOML [population])",
                                       type=["csv", "toml"], key="fair_population")  # fmt: skip

if not sensitive:
    st.info("Pick at least one sensitive attribute.", icon=":material/tune:")
    st.stop()
with ui.user_errors():
    population = None
    if population_file is not None:
        path = ui.upload_folder() / f"population-{population_file.file_id}-{population_file.name}"
        if not path.exists():
            path.write_bytes(population_file.getvalue())
        population = tuple(sorted(read_population(path).items()))
    run_settings = with_overrides(settings, time_chunk=chunk)
    with st.status("Fairness audit…", expanded=False) as status:
        audit = cached_audit(str(store.path), ui.store_mtime(store), window, tuple(sensitive),
                             reference.strip() or None, population, None if champion == "(first)" else champion,
                             None if challenger == "(newest)" else challenger, run_settings,
                             _progress=status.update)  # fmt: skip
        status.update(label=f"Fairness audit done in {audit.seconds:.2f} s", state="complete")
    record_once(store, audit, (window, tuple(sensitive), reference, population, champion, challenger, run_settings))

# --- Verdict ------------------------------------------------------------------------------------------
show = {"fail": st.error, "pass": st.success, "insufficient": st.warning}[audit.verdict]
show(f"**{audit.verdict.upper()}** — {audit.verdict_text[len(audit.verdict) + 2 :]}", icon=":material/balance:")
st.caption(
    f"Reference group: **{audit.reference_group}** · {audit.labels['predictions']:,} predictions, "
    f"{audit.labels['labelled']:,} labelled ({audit.labels['conflicting_traces']:,} with conflicting labels, "
    f"{audit.labels['conflicts_dropped']:,} dropped) · fail = ratio outside ×{1 / settings.max_ratio:.2f}–"
    f"{settings.max_ratio:g} of the reference and significant after {settings.adjust} (α={settings.alpha:g}) · "
    f"minimum {settings.min_positives} positives / {settings.min_negatives} negatives per group"
)
for warning in audit.warnings:
    st.warning(warning, icon=":material/warning:")

m = st.columns(4)
for col, name in zip(m, ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                         "equalized_odds_ratio"), strict=True):  # fmt: skip
    value = audit.disparities.get(name)
    low, high = (audit.disparity_intervals.get(name) or [None, None])[:2]
    col.metric(name.replace("_", " "), "n/a" if value is None else f"{value:.3f}",
               help=f"95% bootstrap interval [{low:.3f}, {high:.3f}]" if low is not None else None)  # fmt: skip

# --- Groups -------------------------------------------------------------------------------------------
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
    ui.table(disparity_table(audit))
    st.caption(FOUR_FIFTHS_NOTE)

# --- Over time, representation, versions, calibration -------------------------------------------------
tab_time, tab_rep, tab_versions, tab_cal = st.tabs(
    ["Gap over time", "Representation", "Champion vs challenger", "Calibration"]
)
with tab_time:
    if audit.over_time:
        st.plotly_chart(ratio_over_time_figure(audit, metric), width="stretch")
        widening = [t for t in audit.over_time["trends"] if t["widening"]]
        if widening:
            st.warning("Widening: " + "; ".join(f"{t['group']} ({METRIC_NAMES[t['metric']]})" for t in widening))
    else:
        st.info("No timestamps in scope.")
with tab_rep:
    st.plotly_chart(representation_figure(audit), width="stretch")
    rep = audit.representation
    fit = rep["labelled_vs_predictions"]
    st.caption(
        f"Labelled feedback vs predictions: JS distance {fit['js_distance'] or 0:.3f}, chi-square "
        f"{fit['statistic'] or 0:,.1f} (df {fit['df']}, p={fit['p_value'] if fit['p_value'] is not None else 'n/a'})."
        f" A group is under-represented when its labelled share is below {1 - rep['threshold']:.0%} of its target "
        f"share ({rep['target']}); the oversampling factor restores it."
    )
    ui.table(
        [{k: g[k] for k in ("group", "predictions", "labelled", "share_predictions", "share_labelled", "coverage",
                            "target_share", "under_represented", "oversampling_factor")} for g in rep["groups"]],
    )  # fmt: skip
with tab_versions:
    if audit.versions and len(audit.versions.get("per_version", {})) == 2:
        v = audit.versions
        st.caption(f"{v['champion']} vs {v['challenger']} on the period both served "
                   f"({v['period']['from'][:10]} – {v['period']['to'][:10]}).")  # fmt: skip
        st.plotly_chart(versions_figure(audit), width="stretch")
        changes = versions_table(audit)
        ui.table(changes, column_config=number_format(changes))
    else:
        st.info("Needs two model versions that served at the same time.")
with tab_cal:
    if audit.calibration and audit.calibration.get("groups"):
        st.plotly_chart(calibration_figure(audit), width="stretch")
    else:
        st.info("No scores in scope.")

# --- Downloads ----------------------------------------------------------------------------------------
d1, d2, _ = st.columns([1, 1, 3])
d1.download_button("Audit (JSON)", lambda: json.dumps(audit.to_dict(), indent=2), "fairness.json",
                   "application/json", icon=":material/download:", key="fair_json", on_click="ignore")  # fmt: skip
d2.download_button("Groups (CSV)", audit.groups_csv, "fairness_groups.csv", "text/csv", icon=":material/download:",
                   key="fair_csv", on_click="ignore")  # fmt: skip
