"""Tables and curves of an A/B result for people: the results table and the power curve (no Streamlit)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench.abtest import formats
from workbench.abtest.result import ABTestResult
from workbench.stats.power import power_at


def power_curve(result: ABTestResult, status: Any) -> dict[str, Any] | None:
    """Power vs units per arm for the target lift at the observed baseline (None without a plan)."""
    from statsmodels.stats.proportion import proportion_effectsize  # lazy: statsmodels is heavy

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
        "target": f"a {formats.relative(status.target_mde_rel, word=True)} lift",
    }  # fmt: skip


RESULT_COLUMNS_SHOWN = ("metric", "variant", "control", "variant value", "difference [CI]", "lift [CI]", "CI level",
                        "p adjusted", "P(beat control)", "risk", "guardrail")  # fmt: skip


def shown_columns(table: pd.DataFrame) -> list[str]:
    """:data:`RESULT_COLUMNS_SHOWN` of :func:`results_table`, without "CI level" when every row has the same one
    (the page then says it once), "variant" when there is one (the verdict names it), "guardrail" when no row
    is a guardrail."""
    drop = set()
    if table.empty or table["variant"].nunique() == 1:
        drop.add("variant")
    if table.empty or table["CI level"].nunique() == 1:
        drop.add("CI level")
    if table.empty or not table["guardrail"].astype(bool).any():
        drop.add("guardrail")
    return [c for c in RESULT_COLUMNS_SHOWN if c not in drop]


def results_table(result: ABTestResult) -> pd.DataFrame:
    """One row per metric and variant for the page: means, difference and lift with CIs, p and adjusted p, Bayes.

    The CI level is a column of its own: with Holm or BH each comparison's interval has its own level (the one
    matching its adjusted p-value). :data:`RESULT_COLUMNS_SHOWN` are the columns the page shows (p, n per arm
    and the test are behind an expander; "significant" is p adjusted < α, which the caption says), so the table
    fits the page without scrolling sideways.
    """
    out = []
    for c in [*result.comparisons, *result.guardrails]:
        low, high = c.diff_ci or (None, None)
        diff_ci = (
            f"[{formats.difference(c, low, False)}, {formats.difference(c, high, False)}]" if c.diff_ci else "[n/a]"
        )
        rel_ci = (
            f"[{formats.relative(c.rel_lift_ci[0])}, {formats.relative(c.rel_lift_ci[1])}]" if c.rel_lift_ci else ""
        )
        out.append({
            "metric": c.label + (" (guardrail)" if c.role == "guardrail" else ""), "variant": c.variant,
            "control": formats.metric_value(c, c.control_mean),
            "variant value": formats.metric_value(c, c.variant_mean),
            "difference [CI]": f"{formats.difference(c, c.diff)} {diff_ci if c.diff_ci else '[n/a]'}",
            "lift [CI]": f"{formats.relative(c.rel_lift)} {rel_ci}".strip(),
            "CI level": f"{1 - c.ci_level:.1%}",
            "p adjusted": formats.p_value(c.p_adjusted), "significant": c.significant,
            "P(beat control)": c.prob_beat_control, "risk": formats.risk(c, c.expected_loss),
            "guardrail": (c.guardrail or {}).get("status", ""), "p": c.p_value,
            "n control": c.n_control, "n variant": c.n_variant, "test": c.test,
})  # fmt: skip
    return pd.DataFrame(out)


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
             "p": formats.p_value(s["p_value"]), "p (Holm)": formats.p_value(s["p_adjusted"]), "ok": s["ok"]}
            for s in result.srm.segments]  # fmt: skip
    return pd.DataFrame(rows)


SEGMENT_VERDICTS = {
    "better": "better",
    "worse": "worse",
    "not_significant": "not sig.",
    "too_small": "too small",
    "untestable": "untestable",
}  # the per-value verdict words, short enough for the page's table


def segments_table(result: ABTestResult) -> pd.DataFrame:
    """One row per segment value × metric × variant of the breakdown (``--by``): the difference and lift with their
    intervals, adjusted p, chance to beat control, risk and the value's verdict (better, worse, not significant,
    too small to read)."""
    breakdown = result.segments
    out = []
    for r in breakdown.rows if breakdown else []:
        diff_ci = (f" [{formats.difference(r, r.diff_ci[0], False)}, {formats.difference(r, r.diff_ci[1], False)}]"
                   if r.diff_ci else "")  # fmt: skip
        rel_ci = (f" [{formats.relative(r.rel_lift_ci[0])}, {formats.relative(r.rel_lift_ci[1])}]"
                  if r.rel_lift_ci else "")  # fmt: skip
        out.append({
            breakdown.by: r.value, "metric": r.label + (" (guardrail)" if r.role == "guardrail" else ""),
            "variant": r.variant, "n control / variant": f"{r.n_control:,} / {r.n_variant:,}",
            "control": formats.metric_value(r, r.control_mean),
            "variant value": formats.metric_value(r, r.variant_mean),
            "difference [CI]": f"{formats.difference(r, r.diff)}{diff_ci}",
            "lift [CI]": f"{formats.relative(r.rel_lift)}{rel_ci}" if r.diff_ci else "",
            "p adjusted": formats.p_value(r.p_adjusted), "P(beat control)": r.prob_beat_control,
            "risk": formats.risk(r, r.expected_loss) if r.expected_loss is not None else "",
            "verdict": SEGMENT_VERDICTS[r.verdict],
        })  # fmt: skip
    return pd.DataFrame(out)
