"""Retrain gate: the evidence, the curated retraining set, the decision and its verifiable log."""

from __future__ import annotations

import streamlit as st

from workbench.app import registry, ui
from workbench.gate import view
from workbench.sources.evidence import latest_runs

ui.page_header(
    "Retrain gate", "Approve, reject or defer a retrain on the evidence, and export the exact data to train on."
)

store = ui.require_store()
with ui.user_errors():
    summary = ui.summary()
    runs = latest_runs(store)

st.subheader("Evidence")
evidence, blockers = view.render_evidence(runs)

st.subheader("Curated retraining set")
view.audit_targets_button(evidence)
with ui.user_errors():
    spec = view.curation_form(list(summary.sensitive), list(summary.feedback_by_type), ui.active_window())
    curated = view.cached_preview(str(store.path), ui.store_mtime(store), spec)
view.render_preview(curated, spec, list(summary.sensitive), view.failed_attribute(runs, list(summary.sensitive)))
doc = view.render_exports(store, curated, spec)

st.subheader("Decision")
versions = [v["model_version"] for v in summary.model_versions]
registry.render_facts(versions)
registry.preset_version("gate_candidate", "challenger", versions)  # the challenger is the usual candidate
view.decision_form(store, versions, doc, blockers)

st.subheader("Decision log")
view.render_log(store)
