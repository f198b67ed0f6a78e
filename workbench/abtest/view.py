"""The A/B page's Streamlit glue: its controls, cached runs of :func:`workbench.abtest.run.run`, evidence, rendering.

The page (``pages/abtest.py``) picks a mode, builds an :class:`ABTestRequest` from the controls here and renders
the result with the ``render_*`` functions; the statistics stay in :mod:`workbench.abtest.analyse` and
:mod:`workbench.stats`, the tables in :mod:`workbench.abtest.tables`, the figures in :mod:`workbench.abtest.charts`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from workbench.abtest import charts, formats
from workbench.abtest.request import ABTestRequest
from workbench.abtest.result import ABTestResult, export, load_settings
from workbench.abtest.run import run
from workbench.abtest.shadow import analyse_shadow_file, shadow_document
from workbench.abtest.tables import (
    power_curve,
    results_table,
    robustness_table,
    segments_table,
    shown_columns,
    srm_segments_table,
)
from workbench.app import ui
from workbench.core.window import Window
from workbench.ingest.lake import open_store
from workbench.sources import unit_sums
from workbench.sources.base import FileSource, StoreSource
from workbench.sources.evidence import record_once
from workbench.sources.experiment import METRICS
from workbench.sources.files import file_table
from workbench.sources.store import Store
from workbench.sources.store_queries import filtered_predictions

CALCULATOR_PROPORTIONS = pd.DataFrame({"arm": ["control", "variant"], "n": [10_000, 10_000],
                                       "successes": [3_000, 3_150]})  # fmt: skip
CALCULATOR_MEANS = pd.DataFrame({"arm": ["control", "variant"], "n": [5_000, 5_000], "mean": [52.0, 53.1],
                                 "std": [30.0, 31.0]})  # fmt: skip
METRIC_NAMES = {m.name: m.label for m in METRICS.values()}
CONTROL_LIKE = ("champion", "control", "v1", "baseline")
NONE = "(none)"
BY_HELP = (
    "Every metric per value of this column (GrowthBook's dimension breakdown): first whether the effect differs "
    "across the values at all (Cochran's Q), then each value's lift with p adjusted over every per-value test."
)
VERDICT_BOX = {"ship": st.success, "srm_fail": st.error, "keep_control": st.error, "guardrail_fail": st.error}
RESULT_HELP = {
    "metric": "The metric; a rate's values are in %, its differences in points (pts), a mean's in its unit",
    "control": "The control arm's value of the metric",
    "variant value": "The variant's value of the metric",
    "difference [CI]": "Variant minus control (absolute: percentage points for a rate, the metric's unit for a "
    "mean), with its interval at the row's CI level",
    "lift [CI]": "Relative lift: (variant − control) / control, in %, with its interval",
    "CI level": "Each interval's level: with Holm or BH each comparison is tested at its own adjusted level, and "
    "its interval matches it (it excludes 0 exactly when the adjusted p is below α)",
    "p adjusted": "p-value adjusted for the primary metrics × variants (Holm: family-wise error; BH: false "
    "discovery rate; the Multiple comparisons option); < 0.0001 below 10⁻⁴",
    "p": "The test's p-value before the adjustment (exact value)",
    "significant": "p adjusted below α",
    "P(beat control)": "Posterior probability that the variant is better (Bayesian; not 1 − p)",
    "risk": "Expected loss of choosing the variant (Bayesian, in the metric's units: points for a rate): how much "
    "worse than control it is on average in the posterior cases where it is worse (GrowthBook's risk)",
    "guardrail": "A guardrail's status: shown not worse than control by more than the margin (pass), worse "
    "(fail), or not yet shown either way",
    "n control": "Units (or events) in control",
    "n variant": "Units (or events) in the variant",
    "n control / variant": "Observations in control and in the variant for this value (units for a ratio metric)",
    "test": "The test: z (two proportions), welch t (means), delta method (ratios)",
    "p (Welch / z)": "The main test's p-value (uncapped)",
    "cap": "The value the metric was capped (winsorized) at",
    "capped difference": "Variant minus control after capping",
    "capped p": "Welch's p-value after capping",
    "Mann–Whitney p": "Rank test: does the variant's distribution sit higher or lower?",
    "CUPED θ": "CUPED's coefficient on the pre-period value",
    "CUPED variance reduction": "Share of the variance CUPED removed",
    "unit-level p": "p-value counting each unit once (delta method), for events that cluster within units",
    "design effect": "Variance inflation from events clustering within units (1 = none)",
    "p (Holm)": "SRM p-value adjusted across the segment values by Holm",
    "ok": "No sample ratio mismatch in this segment value",
    "verdict": "This value's own result: better or worse (adjusted p below α), not sig. (not significant), too small "
    "to read, or untestable",
}
NUMBER_FORMATS = {
    **{name: st.column_config.Column(help=text) for name, text in RESULT_HELP.items()},
    "p": st.column_config.NumberColumn(format="%.2g", help=RESULT_HELP["p"]),
    "P(beat control)": st.column_config.ProgressColumn(
        min_value=0.0, max_value=1.0, format="percent", help=RESULT_HELP["P(beat control)"], width="small"
    ),
}


def statistical_options() -> dict[str, Any]:
    """Returns the request options of the "Statistical options" expander (defaults: the ``[abtest]`` settings)."""
    s = load_settings()
    with st.expander("Statistical options"):
        o1, o2, o3, o4 = st.columns(4)
        alpha = o1.number_input("α (two-sided)", 0.001, 0.2, s.alpha, 0.005, format="%.3f", key="ab_alpha")
        adjustment = o2.selectbox("Multiple comparisons", ["holm", "bh", "none"], key="ab_adjustment",
                                  index=["holm", "bh", "none"].index(s.adjustment),
                                  help="Holm controls the family-wise error; BH the false discovery rate.")  # fmt: skip
        tuning_help = (
            "N*: the units per arm at which the always-valid band (a mixture sequential test, Howard et al. 2021) "
            f"is tightest; peeking before or after costs width (settings: {s.sequential_tuning_n:,.0f})."
        )
        tuning_n = o3.number_input("Sequential tuning N*", 100, 1_000_000, int(s.sequential_tuning_n), 500,
                                   key="ab_tuning", help=tuning_help)  # fmt: skip
        margin_help = "A guardrail passes when shown not worse than this share of control."
        margin = o4.number_input("Guardrail margin (relative)", 0.0, 0.5, s.guardrail_margin, 0.01, key="ab_margin",
                                 help=margin_help)  # fmt: skip
    return {"alpha": alpha, "adjustment": adjustment, "sequential_tuning_n": float(tuning_n),
            "guardrail_margin": margin, "settings": s}  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=16)
def segment_columns(path: str, version: float) -> list[str]:
    """Returns the columns a result can be broken down by: the store's sensitive and categorical roles."""
    del version
    with open_store(path).ibis() as con:
        return unit_sums.segment_columns(con.con)


@st.cache_data(show_spinner=False, max_entries=16)
def experiment_arms(path: str, version: float, window: Window | None, arm_source: str) -> list[str]:
    """Returns the distinct arms (the ``arm`` role, or model versions) among predictions in the window, sorted."""
    del version
    with open_store(path).ibis() as con:
        p = filtered_predictions(con, window)
        if arm_source == "auto":
            arm_source = "arm" if int(p.arm.count().execute()) > 0 else "model_version"
        frame = p.filter(p[arm_source].notnull()).select(arm=p[arm_source].cast("string")).distinct().execute()
    return sorted(frame["arm"].tolist())


def store_request(store: Store, options: dict[str, Any]) -> ABTestRequest:
    """Returns the store-mode request from the page's pickers (arms source, control, metrics, guardrails, CUPED);
    stops the page with a hint when there is no store, no experiment or no metric picked."""
    if not store.exists():
        st.info("No store yet: build the demo with `workbench demo` or ingest files first, or use the calculator.",
                icon=":material/database:")  # fmt: skip
        st.stop()
    window, settings = ui.active_window(), options["settings"]
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([1.2, 1.2, 2.2, 2.2])
        arm_source = c1.selectbox("Arms from", ["auto", "arm", "model_version"], key="ab_arm_source",
                                  help="auto: the arm role when set, else model versions.")  # fmt: skip
        with ui.user_errors():
            arms = experiment_arms(str(store.path), ui.store_mtime(store), window, arm_source)
        if len(arms) < 2:
            st.info("No experiment here: fewer than two arms in this window (set the `arm` role or pick model "
                    "versions).", icon=":material/science:")  # fmt: skip
            st.stop()
        preferred = settings.control if settings.control in arms else None
        control = preferred or next((a for a in arms if a.lower() in CONTROL_LIKE), arms[0])
        control = c2.selectbox("Control arm", arms, index=arms.index(control), key="ab_control")
        defaults = [m for m in settings.metrics if m in METRIC_NAMES]
        metrics = c3.multiselect("Primary metrics", list(METRIC_NAMES), default=defaults, key="ab_metrics",
                                 format_func=METRIC_NAMES.get)  # fmt: skip
        guards = [m for m in settings.guardrails if m in METRIC_NAMES]
        guardrails = c4.multiselect("Guardrails (must not get worse)", list(METRIC_NAMES), default=guards,
                                    key="ab_guardrails", format_func=METRIC_NAMES.get)  # fmt: skip
        t1, t2, t3 = st.columns([3, 2, 1])
        cuped = t1.toggle("CUPED: adjust by each unit's pre-period value of the metric", value=settings.cuped,
                          key="ab_cuped")  # fmt: skip
        by = t2.selectbox("Break results down by", [NONE, *segment_columns(str(store.path), ui.store_mtime(store))],
                          key="ab_by", help=BY_HELP)  # fmt: skip
        min_n = t3.number_input("Min. n per arm", 1, 1_000_000, settings.segment_min_n, 10, key="ab_min_n",
                                help="With a breakdown: fewer observations than this in an arm and a value is too "
                                "small to read (no interval, no verdict).")  # fmt: skip
    if not metrics:
        st.info("Pick at least one primary metric.", icon=":material/tune:")
        st.stop()
    with ui.user_errors():
        return ABTestRequest(metrics=tuple(metrics), guardrails=tuple(g for g in guardrails if g not in metrics),
                             window=window, arm_source=arm_source, cuped=cuped, control=control, by=_picked(by),
                             segment_min_n=int(min_n), **options)  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=16)
def cached_store_result(path: str, version: float, request: ABTestRequest, _progress: Any = None) -> ABTestResult:
    """Returns :func:`workbench.abtest.run.run` over the store, cached per store path, data version and request."""
    del version
    say = (lambda message: _progress(label=f"A/B analysis: {message}…")) if _progress else None
    return run(StoreSource(open_store(path)), request, say)


def store_result(store: Store, request: ABTestRequest) -> ABTestResult:
    """Returns the store-mode result (in a status box with the analysis's steps) and records it for the gate."""
    with st.status("Analysing the experiment…", expanded=False) as status, ui.user_errors():
        result = cached_store_result(str(store.path), ui.store_mtime(store), request, _progress=status.update)
        status.update(label="Analysis done", state="complete")
    record_once(store, result, st.session_state.setdefault("recorded", set()), (repr(request), result.verdict_text))
    return result


def summary_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Returns the calculator table's rows as typed-in summaries (blank rows dropped)."""
    rows = []
    for record in frame.to_dict("records"):
        if not str(record.get("arm") or "").strip() or record.get("arm") != record.get("arm"):
            continue
        rows.append(
            {k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in record.items()}
        )
    return rows


def calculator_result(options: dict[str, Any]) -> ABTestResult:
    """Returns the analysis of the calculator table (typed-in results: n and successes, or n, mean and std)."""
    st.caption("Type the results of a test run elsewhere: per arm n and successes (a rate) or n, mean and std.")
    kind = st.radio("Metric type", ["proportion", "mean"], horizontal=True, key="ab_calc_kind")
    table = st.data_editor(CALCULATOR_PROPORTIONS if kind == "proportion" else CALCULATOR_MEANS,
                           num_rows="dynamic", key=f"ab_calc_{kind}", width="stretch")  # fmt: skip
    with ui.user_errors():
        return run(None, ABTestRequest(mode="summary", rows=tuple(summary_rows(table)), **options))


def uploaded_file(label: str, key: str, help_text: str, empty: str) -> tuple[str, list[str], int]:
    """Returns the saved upload's path, its columns and size (a CSV, Parquet or JSON Lines uploader); stops the
    page with ``empty`` as a hint until a file is there."""
    upload = st.file_uploader(label, type=["csv", "tsv", "parquet", "jsonl", "json"], key=key, help=help_text)
    if upload is None:
        st.info(empty, icon=":material/upload_file:")
        st.stop()
    with ui.user_errors():
        path = str(ui.save_upload(upload, "abtest"))
        return path, file_columns(path, upload.size), upload.size


@st.cache_data(show_spinner=False, max_entries=8)
def file_columns(path: str, size: int) -> list[str]:
    """Returns the columns of a CSV/Parquet/JSON Lines file (types inferred by DuckDB)."""
    del size  # part of the cache key only
    with file_table(path) as table:
        return list(table.columns)


@st.cache_data(show_spinner=False, max_entries=8)
def cached_file_result(path: str, size: int, request: ABTestRequest) -> ABTestResult:
    """Returns :func:`workbench.abtest.run.run` over a units file, cached per file and request."""
    del size
    return run(FileSource(Path(path)), request)


def file_result(options: dict[str, Any]) -> ABTestResult:
    """Returns the analysis of an uploaded units file, with its column pickers (arm, metric, type, ratio, CUPED)."""
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
    others = [NONE, *[c for c in columns if c not in (arm_col, metric_col)]]
    denominator = f4.selectbox("Denominator (ratio)", others, key="ab_file_den")
    pre = f5.selectbox("Pre-period value (CUPED)", others, key="ab_file_pre")
    by = st.selectbox("Break results down by", others, key="ab_file_by", help=BY_HELP)
    with ui.user_errors():
        request = ABTestRequest(mode="file", arm_col=arm_col, metric_col=metric_col,
                                kind=None if kind == "auto" else kind, denominator_col=_picked(denominator),
                                pre_col=_picked(pre), by=_picked(by), **options)  # fmt: skip
        return cached_file_result(path, size, request)


def _picked(choice: str) -> str | None:
    return None if choice == NONE else choice


@st.cache_data(show_spinner=False, max_entries=8)
def cached_shadow_result(path: str, size: int, columns: tuple[str, str, str | None], alpha: float) -> Any:
    """Returns :func:`workbench.abtest.shadow.analyse_shadow_file` over (champion, challenger, label) columns,
    cached per file and inputs."""
    del size
    return analyse_shadow_file(path, *columns, alpha)


def shadow_section(alpha: float) -> None:
    """Renders shadow mode: the scored-pairs upload, its column pickers, agreement, McNemar and the download."""
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
    label_options = [NONE, *(c for c in columns if c not in (champion_col, challenger_col))]
    guess = next((c for c in label_options if c.lower() in ("label", "y", "target", "truth", "actual")), NONE)
    label_col = s3.selectbox("True label (McNemar)", label_options, index=label_options.index(guess),
                             key="ab_shadow_label")  # fmt: skip
    with ui.user_errors():
        shadow = cached_shadow_result(path, size, (champion_col, challenger_col, _picked(label_col)), alpha)
    box = {"better": st.success, "worse": st.error}.get(shadow.verdict, st.info)
    box(f"**{shadow.verdict_text}**", icon=":material/gavel:")
    m1, m2, m3, m4 = st.columns(4)
    lo, hi = shadow.agreement_ci or (None, None)
    m1.metric("Agreement", f"{shadow.agreement_rate:.1%}" if shadow.agreement_rate is not None else "n/a",
              help=f"{1 - alpha:.0%} Wilson interval [{lo:.1%}, {hi:.1%}]" if lo is not None else None)  # fmt: skip
    if shadow.labelled:
        m2.metric("Champion accuracy", f"{shadow.champion_accuracy:.1%}")
        m3.metric("Challenger accuracy", f"{shadow.challenger_accuracy:.1%}",
                  formats.points(shadow.accuracy_diff))  # fmt: skip
        discordant = f"on the {sum(shadow.discordant):,} labelled requests where exactly one model was right"
        m4.metric("McNemar exact p", formats.p_value(shadow.mcnemar_p_value), help=discordant)
        st.plotly_chart(charts.shadow_figure(shadow), width="stretch")
        low, high = shadow.accuracy_diff_ci
        st.caption(f"{shadow.labelled:,} of {shadow.n:,} requests are labelled. Accuracy difference "
                   f"{formats.points(shadow.accuracy_diff)}, {1 - alpha:.0%} CI [{formats.points(low, False)}, "
                   f"{formats.points(high, False)}] "
                   "(paired Wald). McNemar's test uses only the two coloured cells: requests where the models "
                   "agree say nothing about which is better.")  # fmt: skip
    else:
        st.caption("No label column: agreement only. Pick the true label to test which model is right more often.")
    document = json.dumps(shadow_document(shadow), indent=2)
    st.download_button("Shadow comparison (JSON)", document, "shadow.json", "application/json",
                       icon=":material/download:", key="ab_shadow_json", on_click="ignore")  # fmt: skip


def render_verdict(result: ABTestResult) -> None:
    """Renders the SRM banner (red on a mismatch), the verdict box and the warnings."""
    srm = result.srm
    if not srm.ok:
        st.error(f"**Sample ratio mismatch** — {srm.message}{srm.reason_suffix}. Every result below is untrustworthy.",
                 icon=":material/report:")  # fmt: skip
    else:
        st.caption(f":material/check_circle: SRM ok: {srm.message}")
    VERDICT_BOX.get(result.verdict, st.warning)(f"**{result.verdict_text}**", icon=":material/gavel:")
    for warning in result.warnings:
        if not warning.startswith("Sample ratio mismatch") and warning not in _shown_in_breakdown(result):
            st.caption(f":material/warning: {warning}")


def render_results(result: ABTestResult) -> None:
    """Renders the results table (all columns behind an expander), robustness, SRM by segment and the forest plot."""
    st.subheader("Results per metric and variant")
    table = results_table(result)
    shown = shown_columns(table)
    ui.table(table, column_order=shown, column_config=NUMBER_FORMATS)
    levels = "" if "CI level" in shown or table.empty else f" ({table['CI level'].iloc[0]} here)"
    st.caption(
        f"p adjusted: {result.adjustment} over the primary metrics × variants; intervals are built at the "
        f"matching per-test level{levels}, so an interval excludes 0 exactly when the adjusted p-value is below "
        f"α = {result.alpha:g}."
    )
    with st.expander("All columns: unadjusted p, units per arm, the test"):
        ui.table(table, column_config=NUMBER_FORMATS)
    robust = robustness_table(result)
    if not robust.empty:
        percentile = result.settings.get("capping_percentile", 0.99)
        of = "non-zero values" if result.settings.get("capping_nonzero_only") else "all values"
        with st.expander("Robustness: capped (winsorized) vs uncapped, Mann–Whitney, CUPED, unit-level check"):
            ui.table(robust, column_config=NUMBER_FORMATS)
            st.caption(f"Capping at the {percentile:.0%} percentile (of {of}, from the settings) tames outliers; "
                       "Mann–Whitney compares ranks, so a skewed metric that moves only in its tail shows up as a "
                       "disagreement with Welch. The unit-level p counts each unit once (delta method).")  # fmt: skip
    if result.srm.segments:
        with st.expander("Sample ratio by segment"):
            ui.table(srm_segments_table(result), column_config=NUMBER_FORMATS)
    st.plotly_chart(charts.forest_figure(result), width="stretch")


def render_segments(result: ABTestResult) -> None:
    """Renders the breakdown by a column: whether the effect differs (Cochran's Q) before the per-value lifts, a
    forest plot per metric and variant, the table with risk, and the values too small to read."""
    breakdown = result.segments
    if breakdown is None:
        return
    st.subheader(f"Results by {breakdown.by}")
    for h in breakdown.heterogeneity:
        box = st.warning if h.differs else st.info
        box(f"{h.text}.", icon=":material/call_split:" if h.differs else ":material/balance:")
    overall = {(c.metric, c.variant): c for c in [*result.comparisons, *result.guardrails]}
    pairs = [(h.metric, h.variant, h.label) for h in breakdown.heterogeneity]
    tabs = st.tabs([f"{label} · {variant}" for _m, variant, label in pairs]) if len(pairs) > 1 else [st.container()]
    for tab, (metric, variant, _label) in zip(tabs, pairs, strict=True):
        with tab:
            figure = charts.segment_forest_figure(breakdown, metric, variant, overall.get((metric, variant)))
            st.plotly_chart(figure, width="stretch", key=f"ab_segment_forest_{metric}_{variant}")
    table = segments_table(result)
    hidden = {"control", "variant value", *(["variant"] if len(result.variants) == 1 else [])}
    ui.table(table, column_order=[c for c in table.columns if c not in hidden], column_config=NUMBER_FORMATS)
    st.caption(f"{breakdown.adjustment_text[0].upper()}{breakdown.adjustment_text[1:]}. A value with fewer than "
               f"{breakdown.min_n:,} observations in an arm is too small to read: no interval, no verdict (setting "
               "`segment_min_n`). The dashed line is the overall effect; the solid line is no difference.")  # fmt: skip
    for warning in breakdown.warnings:
        st.caption(f":material/warning: {warning}.")


def _shown_in_breakdown(result: ABTestResult) -> set[str]:
    """The result's warnings the breakdown section shows itself (values too small to read)."""
    return {f"{w}." for w in result.segments.warnings} if result.segments else set()


def render_timeline(result: ABTestResult) -> None:
    """Renders "Can we stop now?": the cumulative effect of a picked metric and variant with its bands."""
    if not result.timelines:
        return
    st.subheader("Can we stop now? The cumulative effect")
    options = {f"{t.metric} · {t.variant}": t for t in result.timelines}
    picked = st.selectbox("Metric and variant", list(options), key="ab_timeline",
                          format_func=lambda k: f"{_name(k.split(' · ')[0])} · {k.split(' · ')[1]}")  # fmt: skip
    t = options[picked]
    kind = next(c.kind for c in [*result.comparisons, *result.guardrails] if c.metric == t.metric)
    st.plotly_chart(charts.cumulative_figure(t, kind, _name(t.metric), formats.unit_of(t.metric)), width="stretch")
    last_p = t.p_always_valid[-1] if t.p_always_valid else None
    st.caption(f"Look every day at the blue band: it holds its {1 - t.level:.0%} coverage however often you peek "
               f"(always-valid p {formats.p_value(last_p)} now). The dotted fixed-horizon interval is valid only "
               "once, at the planned end." + (f" {t.note}." if t.note else ""))  # fmt: skip


def render_bayes_and_power(result: ABTestResult) -> None:
    """Renders the Bayesian view and the power curves side by side."""
    left, right = st.columns(2)
    with left:
        st.subheader("Bayesian view")
        st.plotly_chart(charts.bayes_figure(result), width="stretch")
        st.caption("P(beat control) is the posterior probability (Beta(1,1) prior for rates, normal approximation "
                   "for means) that the variant is better. It is **not 1 − p**: a p-value is the chance of data this "
                   "extreme if there were no difference, not the chance that the variant wins.")  # fmt: skip
    with right:
        st.subheader("Power")
        for status in result.power:
            curve = power_curve(result, status)
            if curve is None:
                st.caption(f"{_name(status.metric)}: {status.message or 'no plan'}")
                continue
            st.plotly_chart(charts.power_figure(curve), width="stretch")
            share = status.share_of_needed or 0
            more = f", about {status.days_needed:.0f} more days" if status.days_needed else ""
            reachable = status.mde_reachable_rel
            reach = f"; detectable now: {formats.relative(reachable, word=True)}" if reachable else ""
            target = formats.relative(status.target_mde_rel, word=True)
            st.caption(f"{share:.0%} of the {status.n_needed_per_arm:,} per arm needed for a {target} lift at "
                       f"{status.power:.0%} power{more}{reach}.")  # fmt: skip


def render_downloads(result: ABTestResult) -> None:
    """Renders the two downloads: the analysis as the CLI's JSON document, the comparisons as CSV."""
    st.subheader("Download")
    d1, d2 = st.columns(2)
    d1.download_button("Analysis (JSON)", lambda: export(result, "json"), "abtest.json", "application/json",
                       icon=":material/download:", key="ab_json", on_click="ignore")  # fmt: skip
    d2.download_button("Comparisons (CSV)", lambda: export(result, "csv"), "abtest.csv", "text/csv",
                       icon=":material/download:", key="ab_csv", on_click="ignore")  # fmt: skip


def _name(metric_name: str) -> str:
    return METRIC_NAMES.get(metric_name, metric_name)
