"""Fairness: does the model, or the feedback we are about to train on, treat some group worse?"""

from __future__ import annotations

import streamlit as st

from workbench.app import registry, ui
from workbench.fairness import view
from workbench.fairness.view import CONSTRAINTS, DISPARITIES, GROUP_METRICS, METRIC_NAMES, FairnessRequest

ui.page_header(
    "Fairness",
    "Group and intersectional error rates with intervals and tests against a reference group, fairlearn's "
    "disparities, who the feedback represents, the gap over time, champion vs challenger, and the trade-offs: "
    "model versions on accuracy vs disparity and a preview of per-group thresholds.",
)

store = ui.require_store()
with ui.user_errors():
    summary = ui.summary()
    settings = view.load_settings()
window = ui.active_window()
registry.preset_versions("fair_champion", "fair_challenger", [v["model_version"] for v in summary.model_versions])

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
    e1, e2, _ = st.columns([1.6, 1.6, 1.8])
    disparity = e1.selectbox("Trade-off disparity", DISPARITIES, index=DISPARITIES.index("equalized_odds_difference"),
                             format_func=lambda d: d.replace("_", " "), key="fair_disparity")  # fmt: skip
    mitigate = e2.selectbox("Mitigation preview (ThresholdOptimizer)", [*CONSTRAINTS, "(none)"],
                            index=CONSTRAINTS.index("equalized_odds"), format_func=lambda c: c.replace("_", " "),
                            key="fair_mitigate")  # fmt: skip

if not sensitive:
    st.info("Pick at least one sensitive attribute.", icon=":material/tune:")
    st.stop()
with ui.user_errors():
    request = FairnessRequest(
        sensitive=tuple(sensitive),
        window=window,
        champion=None if champion == "(first)" else champion,
        challenger=None if challenger == "(newest)" else challenger,
        reference_group=reference,
        population=view.population_file(population_file),
        chunk=chunk,
        settings=settings,
        compare_versions=True,
        disparity=disparity,
        mitigate=None if mitigate == "(none)" else mitigate,
    )
    with st.status("Fairness audit…", expanded=False) as status:
        audit = view.cached_audit(str(store.path), ui.store_mtime(store), request, _progress=status.update)
        status.update(label=f"Fairness audit done in {audit.seconds:.2f} s", state="complete")
    view.record(store, audit, request)

view.verdict_section(audit)
view.groups_section(audit, metric)
tab_time, tab_rep, tab_versions, tab_cal, tab_trade = st.tabs(
    ["Gap over time", "Representation", "Champion vs challenger", "Calibration", "Trade-offs and mitigation"]
)
with tab_time:
    view.over_time_tab(audit, metric)
with tab_rep:
    view.representation_tab(audit)
with tab_versions:
    view.versions_tab(audit)
    registry.render_facts(versions)
with tab_cal:
    view.calibration_tab(audit)
with tab_trade:
    view.tradeoffs_tab(audit)
view.downloads(audit)
