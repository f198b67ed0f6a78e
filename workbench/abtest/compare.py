"""From per-arm sufficient statistics to comparisons: tests, adjusted p-values, intervals, Bayes, guardrails,
the cumulative timeline and the power status. Pure functions: no engine, no Streamlit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from workbench.sources.experiment import Metric
from workbench.stats.abtest import (
    Effect,
    Moments,
    ProportionStats,
    compare_means,
    compare_proportions,
    compare_ratios,
    mann_whitney_from_ranks,
    non_inferiority,
    ratio_variance,
)
from workbench.stats.bayes import beta_binomial, normal_posterior
from workbench.stats.clean import finite
from workbench.stats.cuped import compare_cuped, compare_cuped_ratios
from workbench.stats.multiple import adjust_pvalues, adjusted_alpha
from workbench.stats.power import days_needed, mde_mean, mde_proportion, plan_mean, plan_proportion
from workbench.stats.sequential import always_valid_p, cs_halfwidth


@dataclass(frozen=True)
class MetricData:
    """Everything aggregated for one metric, per arm: event-level stats, unit-level moments, days, capping, ranks.

    ``events``: ProportionStats (proportions) or Moments (means) per arm, one observation per event/row.
    ``units``: Moments of (Σ value, observations[, pre-period covariate]) per unit, per arm.
    ``cuped``: the stats CUPED runs on — Moments (y, x) per arm (``cuped_kind`` mean) or (y, n, z) (ratio).
    """

    metric: Metric
    role: str
    events: dict[str, Any] | None = None
    units: dict[str, Moments] | None = None
    daily: dict[str, dict[Any, Any]] | None = None
    cuped: dict[str, Moments] | None = None
    cuped_kind: str | None = None
    capped: dict[str, Moments] | None = None
    cap: float | None = None
    ranks: dict[str, tuple[int, int, float, float]] = field(default_factory=dict)
    clustered: bool = False  # units differ from observations: report the unit-level (delta-method) check


def primary_effect(data: MetricData, control: str, variant: str) -> Effect:
    """The comparison whose p-value counts: CUPED when asked, else pooled z / Welch / delta method by kind."""
    if data.cuped is not None:  # an arm without observations of the metric has no moments: empty ones
        k = 3 if data.cuped_kind == "ratio" else 2
        pair = (_get(data.cuped, control, k), _get(data.cuped, variant, k))
        return compare_cuped_ratios(*pair) if data.cuped_kind == "ratio" else compare_cuped(*pair)
    kind = data.metric.kind
    if kind == "ratio":
        return compare_ratios(_get(data.units, control, 2), _get(data.units, variant, 2))
    if kind == "proportion":
        return compare_proportions(data.events.get(control, ProportionStats(0, 0)),
                                   data.events.get(variant, ProportionStats(0, 0)))  # fmt: skip
    return compare_means(_get(data.events, control, 1), _get(data.events, variant, 1))


def _get(stats: dict[str, Moments] | None, arm: str, k: int) -> Moments:
    return (stats or {}).get(arm) or Moments.empty(k)


@dataclass(frozen=True)
class Comparison:
    """One variant vs control on one metric, with everything the page, CLI and notebook show."""

    metric: str
    label: str
    kind: str
    role: str
    variant: str
    control: str
    n_control: int
    n_variant: int
    control_mean: float | None
    variant_mean: float | None
    diff: float | None
    diff_ci: tuple[float, float] | None
    rel_lift: float | None
    rel_lift_ci: tuple[float, float] | None
    p_value: float | None
    p_adjusted: float | None
    ci_level: float
    significant: bool
    direction: str | None
    prob_beat_control: float | None
    expected_loss: float | None
    expected_loss_control: float | None
    bayes_method: str
    test: str
    ci_method: str
    higher_is_better: bool
    message: str | None = None
    clustered: dict[str, Any] | None = None
    capped: dict[str, Any] | None = None
    mann_whitney_p: float | None = None
    cuped: dict[str, Any] | None = None
    sequential: dict[str, Any] | None = None
    guardrail: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN → None is applied by the result's to_dict)."""
        return asdict(self)


def compare_metric(
    data: MetricData, control: str, variants: list[str], alpha: float, seed: int = 0
) -> list[tuple[Effect, dict[str, Any]]]:
    """(primary effect, extras) per variant: clustered check, capped result, Mann–Whitney p, Bayes."""
    out = []
    for variant in variants:
        effect = primary_effect(data, control, variant)
        extras: dict[str, Any] = {}
        if data.clustered and data.cuped is None and data.metric.kind != "ratio" and data.units:
            unit_effect = compare_ratios(_get(data.units, control, 2), _get(data.units, variant, 2))
            if unit_effect.defined and effect.defined and effect.se > 0:
                extras["clustered"] = unit_effect
        if data.capped is not None:
            extras["capped"] = compare_means(_get(data.capped, control, 1), _get(data.capped, variant, 1))
        if variant in data.ranks:
            extras["mann_whitney"] = mann_whitney_from_ranks(*data.ranks[variant])
        better = data.metric.higher_is_better
        if data.metric.kind == "proportion" and data.cuped is None and data.events:
            extras["bayes"] = beta_binomial(data.events[control], data.events[variant], better, seed)
        else:
            extras["bayes"] = normal_posterior(effect.diff, effect.se, better)
        out.append((effect, extras))
    return out


def build_comparisons(
    datas: list[MetricData],
    control: str,
    variants: list[str],
    alpha: float,
    adjustment: str,
    guardrail_margin: float,
    seed: int = 0,
) -> list[Comparison]:
    """Comparisons of every metric × variant; primary p-values adjusted together (Holm/BH), guardrails one-sided.

    Each interval is built at the per-test level of :func:`adjusted_alpha`, so it excludes 0 exactly when
    the adjusted p-value is ≤ alpha (:meth:`Effect.intervals` handles the boundary cases).
    """
    raw = [(d, v, e, x) for d in datas for v, (e, x) in zip(variants, compare_metric(d, control, variants, alpha, seed),
                                                             strict=True)]  # fmt: skip
    primary = [i for i, (d, *_rest) in enumerate(raw) if d.role == "primary"]
    p = np.array([raw[i][2].p_value for i in primary], dtype=float)
    adjusted = adjust_pvalues(p, adjustment) if len(p) else p  # type: ignore[arg-type]
    levels = adjusted_alpha(alpha, p, adjustment) if len(p) else p  # type: ignore[arg-type]
    per_index = {i: (adjusted[k], levels[k]) for k, i in enumerate(primary)}
    comparisons = []
    for i, (data, variant, effect, extras) in enumerate(raw):
        p_adj, level = per_index.get(i, (effect.p_value, alpha))
        level = alpha if math.isnan(level) else float(level)
        comparisons.append(comparison(data, control, variant, effect, extras, p_adj, level, alpha, guardrail_margin))
    return comparisons


def comparison(
    data: MetricData,
    control: str,
    variant: str,
    effect: Effect,
    extras: dict[str, Any],
    p_adj: float,
    level: float,
    alpha: float,
    margin_rel: float,
) -> Comparison:
    """Returns the :class:`Comparison` of one effect: its intervals at ``level``, significance of the adjusted p
    against α and the direction, the Bayesian chance and risk, the robustness extras and (guardrails) the margin."""
    m = data.metric
    intervals = effect.intervals(level)
    significant = bool(effect.defined and p_adj <= alpha)
    direction = None
    if significant:
        direction = "better" if (effect.diff > 0) == m.higher_is_better else "worse"
    bayes = extras["bayes"]
    clustered = extras.get("clustered")
    clustered_dict = None
    if clustered is not None:
        ci = clustered.intervals(level)
        clustered_dict = {"diff_ci": ci.diff_ci, "p_value": finite(clustered.p_value),
                          "design_effect": finite((clustered.se / effect.se) ** 2)}  # fmt: skip
    capped = extras.get("capped")
    capped_dict = None
    if capped is not None:
        ci = capped.intervals(level)
        capped_dict = {"cap": data.cap, "control_mean": finite(capped.control_mean),
                       "variant_mean": finite(capped.variant_mean), "diff": finite(capped.diff),
                       "diff_ci": ci.diff_ci, "p_value": finite(capped.p_value)}  # fmt: skip
    mw = extras.get("mann_whitney")
    guardrail = None
    if data.role == "guardrail":
        guardrail = _guardrail(effect, margin_rel, alpha, m.higher_is_better, significant, direction)
    return Comparison(
        metric=m.name, label=m.label, kind=m.kind, role=data.role, variant=variant, control=control,
        n_control=int(effect.n_control), n_variant=int(effect.n_variant),
        control_mean=finite(effect.control_mean), variant_mean=finite(effect.variant_mean),
        diff=finite(effect.diff), diff_ci=intervals.diff_ci, rel_lift=finite(effect.rel_lift),
        rel_lift_ci=intervals.rel_lift_ci, p_value=finite(effect.p_value), p_adjusted=finite(p_adj),
        ci_level=level, significant=significant, direction=direction,
        prob_beat_control=bayes.prob_beat_control, expected_loss=bayes.expected_loss_variant,
        expected_loss_control=bayes.expected_loss_control, bayes_method=bayes.method, test=effect.test,
        ci_method=intervals.method, higher_is_better=m.higher_is_better, message=effect.message,
        clustered=clustered_dict, capped=capped_dict, mann_whitney_p=finite(mw.p_value) if mw else None,
        cuped={k: finite(v) for k, v in effect.extra.items()} if effect.kind == "cuped" else None,
        guardrail=guardrail,
    )  # fmt: skip


def _guardrail(
    effect: Effect, margin_rel: float, alpha: float, better: bool, significant: bool, direction: str | None
) -> dict[str, Any]:
    """ok: non-inferior within the margin; worse: significantly worse; inconclusive: neither shown yet."""
    if not effect.defined:
        return {"margin": None, "bound": None, "non_inferior": False, "status": "inconclusive"}
    margin = margin_rel * abs(effect.control_mean)
    ni = non_inferiority(effect, margin, alpha, better)
    status = "ok" if ni.non_inferior else ("worse" if direction == "worse" else "inconclusive")
    return {"margin": margin, "margin_rel": margin_rel, "bound": finite(ni.bound), "p_value": finite(ni.p_value),
            "non_inferior": ni.non_inferior, "status": status}  # fmt: skip


@dataclass(frozen=True)
class Timeline:
    """Cumulative effect by day: fixed-horizon interval and the always-valid confidence sequence."""

    metric: str
    variant: str
    days: list[str]
    n_control: list[int]
    n_variant: list[int]
    diff: list[float | None]
    ci_low: list[float | None]
    ci_high: list[float | None]
    cs_low: list[float | None]
    cs_high: list[float | None]
    p_always_valid: list[float | None]
    level: float
    tuning_n: float
    note: str = ""


def timeline(data: MetricData, control: str, variant: str, level: float, tuning_n: float) -> Timeline | None:
    """The cumulative comparison after each day (unit-days as units for ratio metrics; no CUPED)."""
    if not data.daily or control not in data.daily or variant not in data.daily:
        return None
    days = sorted(set(data.daily[control]) | set(data.daily[variant]))
    kind = data.metric.kind
    empty = ProportionStats(0, 0) if kind == "proportion" else Moments.empty(2 if kind == "ratio" else 1)
    acc = {control: empty, variant: empty}
    rows = []
    for day in days:
        for arm in (control, variant):
            acc[arm] = acc[arm] + data.daily[arm].get(day, empty)
        if kind == "proportion":
            effect = compare_proportions(acc[control], acc[variant])
        elif kind == "ratio":
            effect = compare_ratios(acc[control], acc[variant])
        else:
            effect = compare_means(acc[control], acc[variant])
        rows.append((str(day), effect))
    n_total = np.array([e.n_control + e.n_variant for _, e in rows], dtype=float)
    se = np.array([e.se for _, e in rows], dtype=float)
    diff = np.array([e.diff for _, e in rows], dtype=float)
    half = cs_halfwidth(se, n_total, level, tuning_n)
    p_av = always_valid_p(diff, se, n_total, level, tuning_n)
    cis = [e.intervals(level).diff_ci if e.defined else None for _, e in rows]
    note = "unit-days counted as units" if kind == "ratio" else ""
    return Timeline(
        data.metric.name, variant, [d for d, _ in rows], [int(e.n_control) for _, e in rows],
        [int(e.n_variant) for _, e in rows], [finite(x) for x in diff],
        [finite(c[0]) if c else None for c in cis], [finite(c[1]) if c else None for c in cis],
        [finite(x) for x in diff - half], [finite(x) for x in diff + half], [finite(x) for x in p_av],
        level, tuning_n, note,
    )  # fmt: skip


@dataclass(frozen=True)
class PowerStatus:
    """Is the test big enough yet: needed n per arm for the target lift, the share reached, days to go, MDE now."""

    metric: str
    variant: str
    baseline: float | None
    target_mde_rel: float
    alpha_per_comparison: float
    power: float
    n_needed_per_arm: int | None
    n_per_arm_now: int
    share_of_needed: float | None
    days_so_far: float | None
    days_needed: float | None
    mde_reachable_abs: float | None
    mde_reachable_rel: float | None
    std: float | None = None
    message: str | None = None


def power_status(
    data: MetricData, comparison: Comparison, family_size: int, target_rel: float, alpha: float, power: float,
    days_so_far: float | None,
) -> PowerStatus:  # fmt: skip
    """Plan for ``target_rel`` at the observed baseline (α split Bonferroni over the primary family)."""
    per_test = alpha / max(family_size, 1)
    n_now = min(comparison.n_control, comparison.n_variant)
    baseline = comparison.control_mean
    args = (data.metric.name, comparison.variant, baseline, target_rel, per_test, power)
    if baseline is None or baseline == 0 or n_now < 2:
        return PowerStatus(*args, None, n_now, None, days_so_far, None, None, None, message="no baseline yet")
    try:
        if data.metric.kind == "proportion":
            plan = plan_proportion(baseline, target_rel, relative=True, alpha=per_test, power=power)
            reach = mde_proportion(baseline, n_now, per_test, power)
            std = None
        else:
            std = _std(data, comparison.control)
            plan = plan_mean(baseline, std, target_rel, relative=True, alpha=per_test, power=power)
            reach = mde_mean(std, n_now, per_test, power)
    except Exception as exc:  # an impossible plan (rate pushed past 100%): say so, keep the rest
        return PowerStatus(*args, None, n_now, None, days_so_far, None, None, None, message=str(exc))
    needed = plan.n_per_arm
    more = days_needed(needed, n_now, days_so_far or 0) if days_so_far else None
    return PowerStatus(*args, needed, n_now, n_now / needed, days_so_far, more, reach,
                       reach / abs(baseline) if reach is not None else None, std)  # fmt: skip


def _std(data: MetricData, control: str) -> float:
    """Per-observation standard deviation of the estimate's unit: σ of values, or of the linearised ratio."""
    if data.metric.kind == "ratio" and data.units:
        m = data.units[control]
        return math.sqrt(ratio_variance(m) * m.n)
    stats = data.events[control]
    return math.sqrt(stats.variance())
