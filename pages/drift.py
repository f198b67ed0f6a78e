"""Drift: what moved, since when, how much, and does it hurt the model?"""

from __future__ import annotations

import streamlit as st

from workbench.app import registry, ui
from workbench.drift import view

ui.page_header("Drift", "What moved, since when, how much, and does it hurt the model?")

store = ui.require_store()
with ui.user_errors():
    summary = ui.cached_summary(str(store.path), ui.store_mtime(store), None)  # presets span the whole store
if not summary.predictions:
    st.info("The store has no predictions yet.", icon=":material/database:")
    st.stop()
versions = [v["model_version"] for v in summary.model_versions]
settings = view.settings()

# --- What to compare ------------------------------------------------------------------------------------
with st.container(border=True):
    left, right = st.columns([2, 3])
    preset = left.radio("Compare", view.PRESETS, key="drift_preset", help="The reference is the baseline; the "
                        "current window is what you suspect moved.")  # fmt: skip
    custom = {}
    if preset == view.PRESET_VERSIONS:
        a, b = right.columns(2)
        custom["reference_versions"] = a.multiselect(
            "Reference versions", versions, default=versions[:1], key="drift_ref_v"
        )
        custom["current_versions"] = b.multiselect(
            "Current versions", versions, default=versions[-1:], key="drift_cur_v"
        )
        registry.render_facts(versions)  # the registered versions' facts (MLflow on)
    elif preset == view.PRESET_CUSTOM:
        a, b = right.columns(2)
        custom["reference_range"] = a.text_input(
            "Reference (START..END, first:30d, last:7d)", "first:30d", key="drift_ref"
        )
        custom["current_range"] = b.text_input("Current", "last:7d", key="drift_cur")
    with st.expander("Options"):
        o1, o2, o3 = st.columns(3)
        chosen = o1.multiselect("Features", summary.features, placeholder="All features", key="drift_features")
        chunk = o2.selectbox("Over time: chunk by", ["day", "week", "10000 rows"], index=1, key="drift_chunk")
        learned = o2.checkbox(
            f"Learn thresholds from the reference's chunks (mean ± {settings.learned_sigmas:g}σ)", key="drift_learned"
        )
        multivariate = o3.checkbox("Multivariate: domain classifier and PCA", value=True, key="drift_mv")

with ui.user_errors():
    reference, current = view.preset_windows(preset, summary, custom)
    request = view.DriftRequest(reference, current, tuple(chosen), multivariate=multivariate, chunk=chunk.split()[0])
with ui.user_errors(), st.status("Computing drift…", expanded=False) as status:
    result = view.cached_run(store, request, status.update)
    status.update(label=f"Drift computed in {result.seconds or 0:.1f} s", state="complete")
view.record(store, result)

view.render_verdict(result)
view.render_statistics(result)
view.render_distributions(result)
view.render_predictions(result)
view.render_multivariate(result)
over = view.render_over_time(store, result, request, chunk, learned)
perf = view.render_performance(store, request.reference_window, chunk)
view.render_downloads(result, over, perf)
