"""The A/B verdict in words: one word for schedulers and the retrain gate, one sentence with its reasons.

Words: ship, keep_running, no_difference, keep_control, guardrail_fail, srm_fail, insufficient.
Rules, in order: a sample-ratio mismatch makes every result untrustworthy; too few units or an undefined
primary test gives no verdict; then per variant — a primary metric significantly worse keeps control; one
significantly better ships if every guardrail is shown non-inferior (a guardrail significantly worse blocks
it, one not yet shown asks for more data, and so does an effect that vanishes once events are clustered by
unit); otherwise keep running until the sample for the target lift is reached, then call it no difference.
The sentence names the lead metric's chance to beat control and its risk (the expected loss of choosing the
variant) beside the effect; they inform, the rule above decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.abtest import formats

ADJUSTMENT_LABEL = {"holm": "Holm", "bh": "BH", "none": "unadjusted"}
PRIORITY = ("ship", "guardrail_fail", "keep_running", "no_difference", "keep_control", "insufficient")
DESIGN_EFFECT_WARNING = 1.2


def fmt_p(p: float | None) -> str:
    """p=0.012, p<0.0001 or p=n/a."""
    if p is None:
        return "p=n/a"
    return "p<0.0001" if p < 0.0001 else f"p={p:.2g}"


def fmt_effect(c: Any) -> str:
    """The effect and its interval in the metric's natural unit: points for rates, relative % otherwise."""
    if c.diff is None:
        return "n/a"
    if c.kind == "proportion":
        ci = f" [{c.diff_ci[0] * 100:.1f}, {c.diff_ci[1] * 100:.1f}]" if c.diff_ci else ""
        return f"{c.diff * 100:+.1f} pts{ci}"
    if c.rel_lift is not None:
        ci = f" [{c.rel_lift_ci[0]:+.1%}, {c.rel_lift_ci[1]:+.1%}]" if c.rel_lift_ci else ""
        return f"{c.rel_lift:+.1%}{ci}"
    ci = f" [{c.diff_ci[0]:.3g}, {c.diff_ci[1]:.3g}]" if c.diff_ci else ""
    return f"{c.diff:+.3g}{ci}"


def fmt_bayes(c: Any) -> str:
    """Returns ", 97.3% chance to beat champion, risk 0.02 pts": the posterior's chance to win and the expected loss
    of choosing the variant, in the metric's units (GrowthBook's "chance to win" and "risk"); "" when undefined."""
    if c.prob_beat_control is None or c.expected_loss is None:
        return ""
    risk = formats.risk(c, c.expected_loss)
    return f", {formats.chance(c.prob_beat_control)} chance to beat {c.control}, risk {risk}"


def guardrail_phrase(c: Any) -> str:
    """How a guardrail fared, in a few words (\"dwell time unchanged\")."""
    g = c.guardrail or {}
    margin = f"{g.get('margin_rel', 0):.0%}"
    if g.get("status") == "worse":
        return f"{c.label} worse: {fmt_effect(c)}, beyond the {margin} margin"
    if g.get("status") == "inconclusive":
        return f"{c.label} not yet shown within its {margin} margin ({fmt_effect(c)})"
    if c.direction == "better":
        return f"{c.label} better ({fmt_effect(c)})"
    if c.direction == "worse":
        return f"{c.label} {fmt_effect(c)}, within the {margin} margin"
    return f"{c.label} unchanged"


@dataclass(frozen=True)
class Verdict:
    """The verdict word, the sentence, and the variant it is about (None when about the whole test)."""

    word: str
    text: str
    variant: str | None = None


def decide(
    comparisons: list[Any],
    guardrails: list[Any],
    power: list[Any],
    srm: Any,
    control: str,
    variants: list[str],
    adjustment: str,
    blockers: list[str],
    days: float | None,
    min_days: int,
) -> Verdict:
    """The verdict over every variant (see the module docstring for the rules)."""
    if not srm.ok and srm.p_value is not None:
        counts = ", ".join(f"{arm} {n:,}" for arm, n in srm.counts.items())
        return Verdict(
            "srm_fail",
            f"Results are untrustworthy: sample ratio mismatch ({fmt_p(srm.p_value)}; {counts}"
            f"{srm.reason_suffix}). Find the cause (assignment, logging, bots) before reading any result.",
        )
    if blockers:
        return Verdict("insufficient", f"No verdict: {'; '.join(blockers)}.")
    per_variant = [_variant_verdict(v, comparisons, guardrails, power, control, adjustment) for v in variants]
    best = min(per_variant, key=lambda v: (PRIORITY.index(v.word), -_lift(v, comparisons)))
    if best.word == "ship" and days is not None and days < min_days:
        return Verdict(
            "ship",
            f"{best.text}; but it ran only {days:.0f} days, less than a full week: confirm over "
            "whole weeks (day-of-week effects)",
            best.variant,
        )
    return best


def _lift(verdict: Verdict, comparisons: list[Any]) -> float:
    first = next((c for c in comparisons if c.variant == verdict.variant and c.rel_lift is not None), None)
    return first.rel_lift if first else 0.0


def _variant_verdict(
    variant: str, comparisons: list[Any], guardrails: list[Any], power: list[Any], control: str, adjustment: str
) -> Verdict:
    mine = [c for c in comparisons if c.variant == variant]
    guards = [g for g in guardrails if g.variant == variant]
    adj = ADJUSTMENT_LABEL.get(adjustment, adjustment)
    undefined = [c for c in mine if c.p_value is None]
    if undefined:
        c = undefined[0]
        return Verdict("insufficient", f"No verdict: {c.label} of {variant} cannot be tested ({c.message}).", variant)
    worse = [c for c in mine if c.direction == "worse"]
    better = [c for c in mine if c.direction == "better"]
    lead = (better or mine)[0]
    headline = f"{lead.label} {fmt_effect(lead)}, {fmt_p(lead.p_adjusted)} ({adj}){fmt_bayes(lead)}"
    if worse:
        c = worse[0]
        return Verdict(
            "keep_control",
            f"Keep {control}: {variant}'s {c.label} is worse, {fmt_effect(c)}, {fmt_p(c.p_adjusted)} ({adj})"
            f"{fmt_bayes(c)}",
            variant,
        )
    if better:
        clustered = lead.clustered or {}
        deff, unit_ci = clustered.get("design_effect"), clustered.get("diff_ci")
        if deff and deff > DESIGN_EFFECT_WARNING and unit_ci and unit_ci[0] <= 0 <= unit_ci[1]:
            return Verdict(
                "keep_running",
                f"Keep running: {headline}, but events cluster within units (design effect "
                f"{deff:.2f}) and the unit-level interval still includes 0",
                variant,
            )
        failing = [g for g in guards if (g.guardrail or {}).get("status") == "worse"]
        if failing:
            return Verdict(
                "guardrail_fail",
                f"Do not ship {variant}: {headline}, but " + "; ".join(guardrail_phrase(g) for g in failing),
                variant,
            )
        pending = [g for g in guards if (g.guardrail or {}).get("status") == "inconclusive"]
        phrases = "".join(f", {guardrail_phrase(g)}" for g in guards)
        if pending:
            return Verdict("keep_running", f"Keep running: {headline}{phrases}", variant)
        rest = "".join(f", {c.label} {'also better' if c.direction == 'better' else 'unchanged'} ({fmt_effect(c)}, "
                       f"{fmt_p(c.p_adjusted)})" for c in mine if c is not lead)  # fmt: skip
        return Verdict("ship", f"Ship {variant}: {headline}{rest}{phrases}, SRM ok", variant)
    status = next((p for p in power if p.variant == variant and p.metric == lead.metric), None)
    if status is not None and status.share_of_needed is not None and status.share_of_needed < 1:
        more = f" (about {status.days_needed:.0f} more days at the current traffic)" if status.days_needed else ""
        return Verdict(
            "keep_running",
            f"Keep running: {status.share_of_needed:.0%} of the needed sample to detect a "
            f"{status.target_mde_rel:.0%} lift in {lead.label}{more}; so far {headline}",
            variant,
        )
    enough = f", with the sample to detect a {status.target_mde_rel:.0%} lift" if status else ""
    return Verdict("no_difference", f"No detectable difference: {headline}{enough}; keep {control}", variant)
