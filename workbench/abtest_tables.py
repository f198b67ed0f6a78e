"""Tables and curves of an A/B result for people: the results table and the power curve (no Streamlit)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench.abtest_result import ABTestResult


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


def robustness_table(result: ABTestResult) -> pd.DataFrame:
    """Mean metrics side by side: uncapped Welch, capped (winsorized) Welch, Mann–Whitney, CUPED, unit-level check."""
    out = []
    for c in [*result.comparisons, *result.guardrails]:
        capped, cuped, clustered = c.capped or {}, c.cuped or {}, c.clustered or {}
        if not (capped or cuped or clustered or c.mann_whitney_p is not None):
            continue
        out.append({
            "metric": c.label, "variant": c.variant, "difference": c.diff, "p (Welch / z)": c.p_value,
            "cap": capped.get("cap"), "capped difference": capped.get("diff"), "capped p": capped.get("p_value"),
            "Mann–Whitney p": c.mann_whitney_p, "CUPED θ": cuped.get("theta"),
            "CUPED variance reduction": cuped.get("variance_reduction"),
            "unit-level p": clustered.get("p_value"), "design effect": clustered.get("design_effect"),
        })  # fmt: skip
    return pd.DataFrame(out)


def srm_segments_table(result: ABTestResult) -> pd.DataFrame:
    """Units per arm in each segment value with the SRM p-value (Holm across segment values)."""
    rows = [{"segment": s["segment"], "value": s["value"], **{f"units · {a}": n for a, n in s["counts"].items()},
             "p": s["p_value"], "p (Holm)": s["p_adjusted"], "ok": s["ok"]} for s in result.srm.segments]  # fmt: skip
    return pd.DataFrame(rows)
