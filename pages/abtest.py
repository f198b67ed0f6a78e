"""A/B test: is the challenger really better, without hurting the guardrails, and can we stop the test now?"""

from __future__ import annotations

import json

import streamlit as st

from workbench.abtest import charts
from workbench.abtest.analyse import export
from workbench.abtest.shadow import shadow_document
from workbench.abtest.tables import power_curve, results_table, robustness_table, shown_columns, srm_segments_table
from workbench.abtest.verdict import fmt_p
from workbench.abtest.view import (
    CALCULATOR_MEANS,
    CALCULATOR_PROPORTIONS,
    cached_file_result,
    cached_shadow_result,
    cached_store_result,
    calculator_result,
    experiment_arms,
    record_once,
    settings_with,
    uploaded_file,
)
from workbench.app import ui
from workbench.drift.view import data_version
from workbench.sources.experiment import METRICS

ui.page_header("A/B test", "Is the challenger really better, without hurting the guardrails, and can we stop now?")

MODE_STORE, MODE_FILE, MODE_CALCULATOR, MODE_SHADOW = (
    "Experiment in the store",
    "A file (one row per unit)",
    "Calculator (typed-in results)",
    "Shadow mode (same requests)",
)
modes = [MODE_STORE, MODE_FILE, MODE_CALCULATOR, MODE_SHADOW]
mode = st.segmented_control("Input", modes, default=MODE_STORE, key="ab_mode")
names = {m.name: m.label for m in METRICS.values()}

with st.expander("Statistical options"):
    o1, o2, o3, o4 = st.columns(4)
    alpha = o1.number_input("α (two-sided)", 0.001, 0.2, 0.05, 0.005, format="%.3f", key="ab_alpha")
    adjustment = o2.selectbox("Multiple comparisons", ["holm", "bh", "none"], key="ab_adjustment",
                              help="Holm controls the family-wise error; BH the false discovery rate.")  # fmt: skip
    tuning_n = o3.number_input("Sequential tuning N*", 100, 1_000_000, 5000, 500, key="ab_tuning",
                               help="Where the always-valid band is tightest (GrowthBook's default 5000).")  # fmt: skip
    margin = o4.number_input("Guardrail margin (relative)", 0.0, 0.5, 0.05, 0.01, key="ab_margin",
                             help="A guardrail passes when shown not worse than this share of control.")  # fmt: skip
settings = settings_with(alpha, adjustment, float(tuning_n), margin)

store = ui.active_store()
result = None
if mode == MODE_SHADOW:
    st.caption(
        "Both models scored the same requests (the challenger in shadow, unseen by users): how often would it "
        "change what users see, and where they disagree on a labelled request, which one is right?"
    )
    path, columns, size = uploaded_file(
        "Scored pairs (CSV, Parquet, JSON Lines)", "ab_shadow_file",
        "One row per request: the champion's prediction, the challenger's, and the true label where known.",
        "Upload a file of scored pairs to compare the two models.",
    )  # fmt: skip
    s1, s2, s3 = st.columns(3)
    champion_col = s1.selectbox("Champion's prediction", columns, key="ab_shadow_champion")
    challenger_col = s2.selectbox("Challenger's prediction", [c for c in columns if c != champion_col],
                                  key="ab_shadow_challenger")  # fmt: skip
    label_options = ["(none)", *(c for c in columns if c not in (champion_col, challenger_col))]
    guess = next((c for c in label_options if c.lower() in ("label", "y", "target", "truth", "actual")), "(none)")
    label_col = s3.selectbox("True label (McNemar)", label_options, index=label_options.index(guess),
                             key="ab_shadow_label")  # fmt: skip
    with ui.user_errors():
        shadow = cached_shadow_result(path, size, champion_col, challenger_col,
                                      None if label_col == "(none)" else label_col, alpha)  # fmt: skip
    box = {"better": st.success, "worse": st.error}.get(shadow.verdict, st.info)
    box(f"**{shadow.verdict_text}**", icon=":material/gavel:")
    m1, m2, m3, m4 = st.columns(4)
    lo, hi = shadow.agreement_ci or (None, None)
    m1.metric("Agreement", f"{shadow.agreement_rate:.1%}" if shadow.agreement_rate is not None else "n/a",
              help=f"{1 - alpha:.0%} Wilson interval [{lo:.1%}, {hi:.1%}]" if lo is not None else None)  # fmt: skip
    if shadow.labelled:
        m2.metric("Champion accuracy", f"{shadow.champion_accuracy:.1%}")
        m3.metric("Challenger accuracy", f"{shadow.challenger_accuracy:.1%}",
                  f"{shadow.accuracy_diff * 100:+.1f} pts")  # fmt: skip
        discordant = f"on the {sum(shadow.discordant):,} labelled requests where exactly one model was right"
        m4.metric("McNemar exact p", fmt_p(shadow.mcnemar_p_value), help=discordant)
        st.plotly_chart(charts.shadow_figure(shadow), width="stretch")
        low, high = shadow.accuracy_diff_ci
        st.caption(f"{shadow.labelled:,} of {shadow.n:,} requests are labelled. Accuracy difference "
                   f"{shadow.accuracy_diff * 100:+.2f} pts, {1 - alpha:.0%} CI [{low * 100:+.2f}, {high * 100:+.2f}] "
                   "(paired Wald). McNemar's test uses only the two coloured cells: requests where the models "
                   "agree say nothing about which is better.")  # fmt: skip
    else:
        st.caption("No label column: agreement only. Pick the true label to test which model is right more often.")
    document = json.dumps(shadow_document(shadow), indent=2)
    st.download_button("Shadow comparison (JSON)", document, "shadow.json", "application/json",
                       icon=":material/download:", key="ab_shadow_json", on_click="ignore")  # fmt: skip
    st.stop()
if mode == MODE_CALCULATOR:
    st.caption("Type the results of a test run elsewhere: per arm n and successes (a rate) or n, mean and std.")
    kind = st.radio("Metric type", ["proportion", "mean"], horizontal=True, key="ab_calc_kind")
    table = st.data_editor(CALCULATOR_PROPORTIONS if kind == "proportion" else CALCULATOR_MEANS,
                           num_rows="dynamic", key=f"ab_calc_{kind}", width="stretch")  # fmt: skip
    with ui.user_errors():
        result = calculator_result(table, settings)
elif mode == MODE_FILE:
    path, columns, size = uploaded_file(
        "Units file (CSV, Parquet, JSON Lines)", "ab_file",
        "One row per unit: its arm, the metric, optionally a denominator (ratio metrics) and a pre-period value "
        "(CUPED).",
        "Upload a file with one row per unit to analyse it.",
    )  # fmt: skip
    f1, f2, f3, f4, f5 = st.columns(5)
    arm_col = f1.selectbox("Arm column", columns, key="ab_file_arm")
    metric_col = f2.selectbox("Metric column", [c for c in columns if c != arm_col], key="ab_file_metric")
    kind = f3.selectbox("Type", ["auto", "proportion", "mean", "ratio"], key="ab_file_kind")
    others = ["(none)", *[c for c in columns if c not in (arm_col, metric_col)]]
    denominator = f4.selectbox("Denominator (ratio)", others, key="ab_file_den")
    pre = f5.selectbox("Pre-period value (CUPED)", others, key="ab_file_pre")
    with ui.user_errors():
        result = cached_file_result(path, size, arm_col, metric_col, None if kind == "auto" else kind,
                                    None if denominator == "(none)" else denominator,
                                    None if pre == "(none)" else pre, settings)  # fmt: skip
else:
    if not store.exists():
        st.info("No store yet: build the demo with `workbench demo` or ingest files first, or use the calculator.",
                icon=":material/database:")  # fmt: skip
        st.stop()
    window = ui.active_window()
    version = data_version(store)
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([1.2, 1.2, 2.2, 2.2])
        arm_source = c1.selectbox("Arms from", ["auto", "arm", "model_version"], key="ab_arm_source",
                                  help="auto: the arm role when set, else model versions.")  # fmt: skip
        with ui.user_errors():
            arms = experiment_arms(str(store.path), version, window, arm_source)
        if len(arms) < 2:
            st.info("No experiment here: fewer than two arms in this window (set the `arm` role or pick model "
                    "versions).", icon=":material/science:")  # fmt: skip
            st.stop()
        default_control = next((a for a in arms if a.lower() in ("champion", "control", "v1", "baseline")), arms[0])
        control = c2.selectbox("Control arm", arms, index=arms.index(default_control), key="ab_control")
        metrics = c3.multiselect("Primary metrics", list(names), default=["thumbs_up_rate"], key="ab_metrics",
                                 format_func=names.get)  # fmt: skip
        guardrails = c4.multiselect("Guardrails (must not get worse)", list(names), default=["dwell_time"],
                                    key="ab_guardrails", format_func=names.get)  # fmt: skip
        cuped = st.toggle("CUPED: adjust by each unit's pre-period value of the metric", key="ab_cuped")
    if not metrics:
        st.info("Pick at least one primary metric.", icon=":material/tune:")
        st.stop()
    with st.status("Analysing the experiment…", expanded=False) as status, ui.user_errors():
        result = cached_store_result(str(store.path), version, window, tuple(metrics),
                                     tuple(g for g in guardrails if g not in metrics), control, arm_source, cuped,
                                     settings, _progress=status.update)  # fmt: skip
        status.update(label="Analysis done", state="complete")
    record_once(store, result, (window, tuple(metrics), tuple(guardrails), control, arm_source, cuped, settings))

# --- SRM banner and verdict -----------------------------------------------------------------------------
srm = result.srm
if not srm.ok:
    st.error(f"**Sample ratio mismatch** — {srm.message}{srm.reason_suffix}. Every result below is untrustworthy.",
             icon=":material/report:")  # fmt: skip
else:
    st.caption(f":material/check_circle: SRM ok: {srm.message}")
box = {"ship": st.success, "srm_fail": st.error, "keep_control": st.error, "guardrail_fail": st.error}
box.get(result.verdict_word, st.warning)(f"**{result.verdict}**", icon=":material/gavel:")
for warning in result.warnings:
    if not warning.startswith("Sample ratio mismatch"):
        st.caption(f":material/warning: {warning}")

# --- Results ------------------------------------------------------------------------------------------------
st.subheader("Results per metric and variant")
table = results_table(result)
number_formats = {
    "p": st.column_config.NumberColumn(format="%.4g"),
    "p adjusted": st.column_config.NumberColumn(format="%.4g"),
    "P(beat control)": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
}
ui.table(table, column_order=shown_columns(table), column_config=number_formats)
levels = "" if "CI level" in shown_columns(table) or table.empty else f" ({table['CI level'].iloc[0]} here)"
st.caption(
    f"p adjusted: {result.adjustment} over the primary metrics × variants; intervals are built at the "
    f"matching per-test level{levels}, so an interval excludes 0 exactly when the adjusted p-value is below α."
)
with st.expander("All columns: unadjusted p, units per arm, the test"):
    ui.table(table, column_config=number_formats)
robust = robustness_table(result)
if not robust.empty:
    with st.expander("Robustness: capped (winsorized) vs uncapped, Mann–Whitney, CUPED, unit-level check"):
        ui.table(robust)
        st.caption("Capping at the settings' percentile (of all values, or of non-zero ones) tames outliers; "
                   "Mann–Whitney compares ranks, so a skewed metric that moves only in its tail shows up as a "
                   "disagreement with Welch. The unit-level p counts each unit once (delta method).")  # fmt: skip
if result.srm.segments:
    with st.expander("Sample ratio by segment"):
        ui.table(srm_segments_table(result))
st.plotly_chart(charts.forest_figure(result), width="stretch")

if result.timelines:
    st.subheader("Can we stop now? The cumulative effect")
    options = {f"{t.metric} · {t.variant}": t for t in result.timelines}
    picked = st.selectbox("Metric and variant", list(options), key="ab_timeline",
                          format_func=lambda k: f"{names.get(k.split(' · ')[0], k)} · {k.split(' · ')[1]}")  # fmt: skip
    t = options[picked]
    kind = next(c.kind for c in [*result.comparisons, *result.guardrails] if c.metric == t.metric)
    st.plotly_chart(charts.cumulative_figure(t, kind, names.get(t.metric, t.metric)), width="stretch")
    last_p = t.p_always_valid[-1] if t.p_always_valid else None
    st.caption(f"Look every day at the blue band: it holds its {1 - t.level:.0%} coverage however often you peek "
               f"(always-valid {fmt_p(last_p)} now). The dotted fixed-horizon interval is valid only once, at the "
               "planned end." + (f" {t.note}." if t.note else ""))  # fmt: skip

left, right = st.columns(2)
with left:
    st.subheader("Bayesian view")
    st.plotly_chart(charts.bayes_figure(result), width="stretch")
    st.caption("P(beat control) is the posterior probability (Beta(1,1) prior for rates, normal approximation for "
               "means) that the variant is better. It is **not 1 − p**: a p-value is the chance of data this extreme "
               "if there were no difference, not the chance that the variant wins.")  # fmt: skip
with right:
    st.subheader("Power")
    for status_row in result.power:
        curve = power_curve(result, status_row)
        if curve is None:
            st.caption(f"{names.get(status_row.metric, status_row.metric)}: {status_row.message or 'no plan'}")
            continue
        st.plotly_chart(charts.power_figure(curve), width="stretch")
        share = status_row.share_of_needed or 0
        more = f", about {status_row.days_needed:.0f} more days" if status_row.days_needed else ""
        reach = f"; detectable now: {status_row.mde_reachable_rel:+.1%}" if status_row.mde_reachable_rel else ""
        st.caption(f"{share:.0%} of the {status_row.n_needed_per_arm:,} per arm needed for a "
                   f"{status_row.target_mde_rel:.0%} lift{more}{reach}.")  # fmt: skip

st.subheader("Download")
d1, d2 = st.columns(2)
d1.download_button("Analysis (JSON)", lambda: export(result, "json"), "abtest.json", "application/json",
                   icon=":material/download:", key="ab_json", on_click="ignore")  # fmt: skip
d2.download_button("Comparisons (CSV)", lambda: export(result, "csv"), "abtest.csv", "text/csv",
                   icon=":material/download:", key="ab_csv", on_click="ignore")  # fmt: skip
