"""The fairness verdict: group statuses, flags and a sentence with its reasons, from the comparisons.

fail: some group's verdict rate (default selection rate, TPR, FPR) is outside ×[0.8, 1.25] of the
reference group's AND the difference is significant after the Holm adjustment; insufficient: not
one comparison met the minimum sizes; pass otherwise. Groups below the minimum sizes get
"insufficient data", never a verdict. The four-fifths rule is a flag, not the verdict (see
:data:`FOUR_FIFTHS_NOTE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.stats.clean import finite
from workbench.stats.fairness import (
    METRIC_NAMES,
    RATES,
    Comparison,
    FairnessSettings,
    GroupRate,
    bootstrap_cells,
    compare_to_reference,
    disparities,
    group_rates,
    minimum_text,
    percentile_interval,
    range_intervals,
)


def four_fifths_note(share: float = 0.8) -> str:
    """Returns the four-fifths rule in words, with ``share`` (the settings' ``four_fifths``) as its threshold."""
    threshold = "80%" if share == 0.8 else f"{share:.0%} (the settings' four_fifths; the rule says 80%)"
    return (
        f"The four-fifths rule (US EEOC Uniform Guidelines, 1978) flags a group whose selection rate is below "
        f"{threshold} of the highest group's. It is a rule of thumb for adverse impact, not a statistical test and "
        "not a legal finding: it ignores sample size (see the p-values), it assumes a positive prediction is the "
        "favourable outcome (read it inverted when it is not), and equal selection rates are not the goal when the "
        "groups' base rates differ — then compare TPR and FPR (equalized odds) instead."
    )


FOUR_FIFTHS_NOTE = four_fifths_note()


@dataclass(frozen=True)
class Judgement:
    """Per-group statuses, flags (dicts with kind, group, metric, message), the verdict and its sentence."""

    statuses: dict[str, str]
    flags: list[dict[str, Any]]
    verdict: str  # pass | fail | insufficient
    verdict_text: str
    reasons: list[str]


def p_text(p: float | None) -> str:
    """A p-value in words: 'p<0.001' or 'p=0.012' ('p n/a' when undefined)."""
    if p is None:
        return "p n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:.3g}"


def reason(c: Comparison, label: str, reference_label: str) -> str:
    """'FPR for region=south is 0.35 vs 0.23 for region=north (ratio 1.50, p<0.001)'."""
    ratio = "ratio ∞" if c.ratio is None and c.outside else f"ratio {_fmt(c.ratio)}"
    return (
        f"{METRIC_NAMES[c.metric]} for {label} is {_fmt(c.value)} vs {_fmt(c.reference_value)} for "
        f"{reference_label} ({ratio}, {p_text(c.p_adjusted)})"
    )


def four_fifths_flags(
    groups: list[str], labels: dict[str, str], selection: list[GroupRate], settings: FairnessSettings
) -> list[dict[str, Any]]:
    """Groups whose selection rate is below ``four_fifths`` × the highest judged group's (judged groups only)."""
    judged = [(g, r) for g, r in zip(groups, selection, strict=True) if r.sufficient and r.value is not None]
    if len(judged) < 2:
        return []
    top_group, top = max(judged, key=lambda gr: gr[1].value)
    if not top.value:
        return []
    flags = []
    for group, rate in judged:
        ratio = rate.value / top.value
        if ratio < settings.four_fifths:
            flags.append(
                {
                    "kind": "four_fifths",
                    "group": group,
                    "metric": "selection_rate",
                    "ratio": ratio,
                    "message": f"four-fifths rule: the selection rate of {labels[group]} is {rate.value:.3f}, "
                    f"{ratio:.2f} × that of {labels[top_group]} ({top.value:.3f}) — below {settings.four_fifths:g}",
                }
            )
    return flags


def _insufficient_flags(
    groups: list[str], labels: dict[str, str], rates: dict[str, list[GroupRate]], settings: FairnessSettings
) -> list[dict[str, Any]]:
    flags = []
    for i, group in enumerate(groups):
        short = [m for m in settings.verdict_metrics if not rates[m][i].sufficient]
        if not short:
            continue
        details = ", ".join(
            f"{METRIC_NAMES[m]} ({rates[m][i].denominator:,} < {minimum_text(m, settings)})" for m in short
        )
        flags.append(
            {
                "kind": "insufficient_data",
                "group": group,
                "metric": short[0] if len(short) == 1 else None,
                "message": f"insufficient data for {labels[group]}: {details} — no verdict on "
                + ("it" if len(short) == 1 else "them"),
            }
        )
    return flags


def judge(
    groups: list[str],
    labels: dict[str, str],
    reference: str,
    rates: dict[str, list[GroupRate]],
    comparisons: list[Comparison],
    settings: FairnessSettings,
) -> Judgement:
    """Statuses, flags and the verdict from the comparisons with the reference (see the module docstring)."""
    deciding = [c for c in comparisons if c.decides]
    failed = sorted(
        (c for c in deciding if c.status == "fail"),
        key=lambda c: (-abs(np.log(c.ratio)) if c.ratio else -np.inf, c.group, c.metric),
    )
    statuses: dict[str, str] = {}
    for group in groups:
        mine = [c for c in deciding if c.group == group]
        if group == reference:
            judged_reference = any(rates[m][groups.index(group)].sufficient for m in settings.verdict_metrics)
            statuses[group] = "reference" if judged_reference else "insufficient data"
        elif any(c.status == "fail" for c in mine):
            statuses[group] = "fail"
        elif any(c.status == "pass" for c in mine):
            statuses[group] = "pass"
        else:
            statuses[group] = "insufficient data"
    flags: list[dict[str, Any]] = []
    for c in failed:
        flags.append(
            {
                "kind": "disparity",
                "group": c.group,
                "metric": c.metric,
                "ratio": c.ratio,
                "p_adjusted": c.p_adjusted,
                "message": reason(c, labels[c.group], labels[reference]),
            }
        )
    for c in deciding:
        if c.sufficient and c.outside and not c.significant:
            flags.append(
                {
                    "kind": "disparity_not_significant",
                    "group": c.group,
                    "metric": c.metric,
                    "ratio": c.ratio,
                    "p_adjusted": c.p_adjusted,
                    "message": f"{reason(c, labels[c.group], labels[reference])}: outside the ×{settings.max_ratio:g} "
                    "band but not significant — more data would tell",
                }
            )
    flags += four_fifths_flags(groups, labels, rates["selection_rate"], settings)
    flags += _insufficient_flags(groups, labels, rates, settings)
    metrics_text = _metric_list(settings.verdict_metrics)
    judged_groups = [g for g in groups if statuses[g] in ("pass", "fail")]
    reasons = [reason(c, labels[c.group], labels[reference]) for c in failed]
    if failed:
        extra = f"; and {len(reasons) - 3} more" if len(reasons) > 3 else ""
        text = "fail: " + "; ".join(reasons[:3]) + extra
        return Judgement(statuses, flags, "fail", text, reasons)
    insufficient = [g for g in groups if statuses[g] == "insufficient data"]
    if not judged_groups:
        why = (
            f"the reference group {labels[reference]} is too small"
            if statuses.get(reference) == "insufficient data"
            else "no group besides the reference is large enough"
        )
        rules = ", ".join(minimum_text(m, settings) for m in settings.verdict_metrics)
        text = f"insufficient: {why} to judge {metrics_text} (minimum sizes: {rules})"
        return Judgement(statuses, flags, "insufficient", text, [text])
    band = f"×{1 / settings.max_ratio:.2f}–{settings.max_ratio:.2f}"
    text = (
        f"pass: no group's {metrics_text} is outside {band} of {labels[reference]}'s with significance "
        f"({len(judged_groups)} group{'s' if len(judged_groups) != 1 else ''} compared"
        + (f"; {len(insufficient)} with insufficient data" if insufficient else "")
        + ")"
    )
    return Judgement(statuses, flags, "pass", text, [])


def _metric_list(metrics: tuple[str, ...]) -> str:
    names = [METRIC_NAMES[m] for m in metrics]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


@dataclass(frozen=True)
class Evaluation:
    """Everything computed from one set of cells: rates, comparisons, disparities with intervals, the judgement.

    ``replicates`` holds each disparity's bootstrap replicates (for the champion-vs-challenger change).
    """

    groups: list[str]
    reference: str
    cells: np.ndarray
    rates: dict[str, list[GroupRate]]
    comparisons: list[Comparison]
    disparities: dict[str, float | None]
    intervals: dict[str, tuple[float | None, float | None]]
    replicates: dict[str, np.ndarray]
    judgement: Judgement


def evaluate(
    groups: list[str], labels: dict[str, str], cells: np.ndarray, reference: str, settings: FairnessSettings
) -> Evaluation:
    """Rates (Wilson), vs-reference comparisons (z, Holm, bootstrap CIs), fairlearn disparities and the verdict."""
    cells = np.asarray(cells, dtype=float)
    ref = groups.index(reference)
    boot = bootstrap_cells(cells, settings.bootstrap_resamples, settings.seed) if settings.bootstrap_resamples else None
    group_rates_by_metric = {m: group_rates(cells, m, settings) for m in RATES}
    comparisons = compare_to_reference(groups, cells, ref, settings, boot)
    point = disparities(cells, settings.selection_rate_population)
    replicates: dict[str, np.ndarray] = {}
    intervals: dict[str, tuple[float | None, float | None]] = {}
    if boot is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            replicates = disparities(boot, settings.selection_rate_population)
        intervals = {name: percentile_interval(values, settings.confidence) for name, values in replicates.items()}
        # max − min differences: from simultaneous pairwise intervals (the percentile interval is biased upward)
        intervals.update(range_intervals(cells, boot, settings.selection_rate_population, settings.confidence))
    judgement = judge(groups, labels, reference, group_rates_by_metric, comparisons, settings)
    return Evaluation(
        groups=groups,
        reference=reference,
        cells=cells,
        rates=group_rates_by_metric,
        comparisons=comparisons,
        disparities={name: finite(value) for name, value in point.items()},
        intervals=intervals,
        replicates=replicates,
        judgement=judgement,
    )
