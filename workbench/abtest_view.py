"""What the A/B page asks for: cached analyses, the arms in the store, power curves, the results table, evidence.

The page renders these; the statistics stay in :mod:`workbench.abtest` and :mod:`workbench.stats`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from workbench.abtest import analyse_store, analyse_summary, load_settings
from workbench.abtest_result import ABTestResult
from workbench.queries import Window, filtered_predictions
from workbench.store import Store

CALCULATOR_PROPORTIONS = pd.DataFrame({"arm": ["control", "variant"], "n": [10_000, 10_000],
                                       "successes": [3_000, 3_150]})  # fmt: skip
CALCULATOR_MEANS = pd.DataFrame({"arm": ["control", "variant"], "n": [5_000, 5_000], "mean": [52.0, 53.1],
                                 "std": [30.0, 31.0]})  # fmt: skip


def settings_with(alpha: float, adjustment: str, tuning_n: float, margin: float) -> Any:
    """The [abtest] settings with the page's overrides."""
    return replace(load_settings(), alpha=alpha, adjustment=adjustment, sequential_tuning_n=tuning_n,
                   guardrail_margin=margin)  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=16)
def experiment_arms(path: str, version: tuple, window: Window | None, arm_source: str) -> list[str]:
    """Distinct arms (the ``arm`` role, or model versions) among predictions in the window, sorted."""
    del version
    with Store(path).ibis() as con:
        p = filtered_predictions(con, window)
        if arm_source == "auto":
            arm_source = "arm" if int(p.arm.count().execute()) > 0 else "model_version"
        frame = p.filter(p[arm_source].notnull()).select(arm=p[arm_source].cast("string")).distinct().execute()
    return sorted(frame["arm"].tolist())


@st.cache_data(show_spinner=False, max_entries=16)
def cached_store_result(
    path: str,
    version: tuple,
    window: Window | None,
    metrics: tuple[str, ...],
    guardrails: tuple[str, ...],
    control: str | None,
    arm_source: str,
    cuped: bool,
    settings: Any,
    _progress: Any = None,
) -> ABTestResult:
    """:func:`workbench.abtest.analyse_store`, cached per store path, data version and inputs."""
    del version
    say = (lambda message: _progress(label=f"A/B analysis: {message}…")) if _progress else None
    return analyse_store(Store(path), window, list(metrics), list(guardrails), control, arm_source, cuped, settings,
                         progress=say)  # fmt: skip


def summary_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The calculator table's rows as typed-in summaries (blank rows dropped)."""
    rows = []
    for record in frame.to_dict("records"):
        if not str(record.get("arm") or "").strip() or record.get("arm") != record.get("arm"):
            continue
        rows.append(
            {k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in record.items()}
        )
    return rows


def calculator_result(frame: pd.DataFrame, settings: Any, control: str | None = None) -> ABTestResult:
    """:func:`workbench.abtest.analyse_summary` over the calculator table."""
    return analyse_summary(summary_rows(frame), control or None, settings)


def power_curve(result: ABTestResult, status: Any) -> dict[str, Any] | None:
    """Power vs units per arm for the target lift at the observed baseline (None without a plan)."""
    from statsmodels.stats.proportion import proportion_effectsize

    from workbench.stats.power import power_at

    if not status.n_needed_per_arm or status.baseline is None:
        return None
    comparison = next(c for c in result.comparisons if c.metric == status.metric and c.variant == status.variant)
    if comparison.kind == "proportion":
        target = status.baseline * (1 + status.target_mde_rel)
        effect = float(proportion_effectsize(target, status.baseline))
    else:
        effect = status.baseline * status.target_mde_rel / status.std if status.std else 0.0
    top = max(status.n_needed_per_arm, status.n_per_arm_now) * 1.6
    n = np.unique(np.linspace(2, top, 200).round())
    curve = power_at(effect, n, status.alpha_per_comparison)
    return {
        "label": comparison.label, "n": n.tolist(), "power": curve.tolist(), "n_now": status.n_per_arm_now,
        "power_now": float(power_at(effect, status.n_per_arm_now, status.alpha_per_comparison)),
        "n_needed": status.n_needed_per_arm, "target_power": status.power,
        "target": f"a {status.target_mde_rel:+.0%} lift",
    }  # fmt: skip


def results_table(result: ABTestResult) -> pd.DataFrame:
    """One row per metric and variant for the page: means, lift with its CI, p and adjusted p, Bayes."""
    out = []
    for c in [*result.comparisons, *result.guardrails]:
        pct = c.kind == "proportion"
        fmt = (lambda v: f"{v:.2%}") if pct else (lambda v: f"{v:.4g}")
        diff_ci = f"[{_signed(c.diff_ci[0], pct)}, {_signed(c.diff_ci[1], pct)}]" if c.diff_ci else "n/a"
        rel_ci = f"[{c.rel_lift_ci[0]:+.1%}, {c.rel_lift_ci[1]:+.1%}]" if c.rel_lift_ci else "n/a"
        out.append({
            "metric": c.label + (" (guardrail)" if c.role == "guardrail" else ""), "variant": c.variant,
            "control": fmt(c.control_mean) if c.control_mean is not None else "n/a",
            "variant value": fmt(c.variant_mean) if c.variant_mean is not None else "n/a",
            "difference": _signed(c.diff, pct), f"CI ({1 - c.ci_level:.1%})": diff_ci,
            "lift": f"{c.rel_lift:+.1%}" if c.rel_lift is not None else "n/a", "lift CI": rel_ci,
            "p adjusted": c.p_adjusted, "significant": c.significant, "P(beat control)": c.prob_beat_control,
            "guardrail": (c.guardrail or {}).get("status", ""), "p": c.p_value,
            "n control": c.n_control, "n variant": c.n_variant, "test": c.test,
})  # fmt: skip
    return pd.DataFrame(out)


def _signed(value: float | None, pct: bool) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:+.2f} pts" if pct else f"{value:+.4g}"


def record_once(store: Store, result: ABTestResult, key: tuple) -> None:
    """Record the run (``record_run(store, "abtest", …)``) once per result shown in this session."""
    from workbench.evidence import record_run

    done = st.session_state.setdefault("abtest_recorded", set())
    key = repr((str(store.path), *key, result.verdict))
    if key not in done:
        record_run(store, "abtest", result.verdict_word, result.summary())
        done.add(key)
