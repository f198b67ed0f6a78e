"""A/B test: is the challenger really better, without hurting the guardrails, and can we stop the test now?

Controls → :mod:`workbench.abtest.view` (requests, cached runs, evidence) → its ``render_*`` functions.
"""

from __future__ import annotations

import streamlit as st

from workbench.abtest import view
from workbench.app import registry, ui

ui.page_header("A/B test", "Is the challenger really better, without hurting the guardrails, and can we stop now?")

MODE_STORE, MODE_FILE, MODE_CALCULATOR, MODE_SHADOW = (
    "Experiment in the store",
    "A file (one row per unit)",
    "Calculator (typed-in results)",
    "Shadow mode (same requests)",
)
mode = st.segmented_control("Input", [MODE_STORE, MODE_FILE, MODE_CALCULATOR, MODE_SHADOW], default=MODE_STORE,
                            key="ab_mode")  # fmt: skip
options = view.statistical_options()

if mode == MODE_SHADOW:
    view.shadow_section(options["alpha"])
    st.stop()
if mode == MODE_CALCULATOR:
    result = view.calculator_result(options)
elif mode == MODE_FILE:
    result = view.file_result(options)
else:
    options = registry.champion_control(options)  # the control arm defaults to the champion alias's version
    store = ui.active_store()
    result = view.store_result(store, view.store_request(store, options))

view.render_verdict(result)
if mode == MODE_STORE:
    registry.render_facts(registry.store_versions())
view.render_results(result)
view.render_segments(result)
view.render_timeline(result)
view.render_bayes_and_power(result)
view.render_downloads(result)
