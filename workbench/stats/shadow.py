"""Shadow mode: champion and challenger scored on the same traffic, compared pair by pair.

Every request has both predictions, so the comparison is paired: the agreement rate says how often the
challenger would change what users see, and McNemar's test asks whether, where they disagree on a labelled
request, one is right more often than the other. Only the discordant pairs count.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats

from workbench.stats.intervals import wilson_interval


@dataclass(frozen=True)
class ShadowCounts:
    """Paired counts: all pairs, agreeing pairs, and among labelled pairs who was right (b, c: only one model)."""

    n: int
    agree: int
    labelled: int = 0
    both_right: int = 0
    champion_only_right: int = 0
    challenger_only_right: int = 0
    both_wrong: int = 0

    def __add__(self, other: ShadowCounts) -> ShadowCounts:
        return ShadowCounts(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values(), strict=True)))


@dataclass(frozen=True)
class ShadowResult:
    """Agreement, accuracies and McNemar's test; ``verdict`` is one of better, worse, no_difference, no_labels."""

    n: int
    agreement_rate: float | None
    agreement_ci: tuple[float, float] | None
    labelled: int
    champion_accuracy: float | None
    challenger_accuracy: float | None
    accuracy_diff: float | None
    accuracy_diff_ci: tuple[float, float] | None
    discordant: tuple[int, int]
    mcnemar_statistic: float | None
    mcnemar_p_value: float | None
    mcnemar_chi2_p_value: float | None
    verdict: str
    verdict_text: str
    concordant: tuple[int, int] = (0, 0)  # labelled pairs where both models were right, both wrong

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def mcnemar_exact(b: int, c: int) -> tuple[float, float]:
    """(min(b, c), two-sided exact binomial p = min(1, 2·P(X ≤ min(b, c))), X ~ Bin(b + c, ½)).

    Equals ``statsmodels.stats.contingency_tables.mcnemar(table, exact=True)``.
    """
    low = min(b, c)
    return float(low), float(min(1.0, 2 * stats.binom.cdf(low, b + c, 0.5)))


def mcnemar_chi2(b: int, c: int) -> float | None:
    """p-value of (|b − c| − 1)²/(b + c) against χ²(1) (``mcnemar(table, exact=False, correction=True)``)."""
    if b + c == 0:
        return None
    return float(stats.chi2.sf((abs(b - c) - 1) ** 2 / (b + c), 1))


def compare_shadow(counts: ShadowCounts, alpha: float = 0.05) -> ShadowResult:
    """Agreement rate (Wilson interval), accuracies, paired accuracy difference (Wald) and McNemar's exact test."""
    if counts.n == 0:
        return ShadowResult(0, None, None, 0, None, None, None, None, (0, 0), None, None, None, "no_labels",
                            "No scored pairs: nothing to compare.")  # fmt: skip
    lo, hi = wilson_interval(counts.agree, counts.n, 1 - alpha)
    agreement = counts.agree / counts.n
    b, c, m = counts.champion_only_right, counts.challenger_only_right, counts.labelled
    if m == 0:
        text = f"The models agree on {agreement:.1%} of {counts.n:,} requests; no labels, so no verdict on correctness."
        return ShadowResult(counts.n, agreement, (float(lo), float(hi)), 0, None, None, None, None, (b, c), None,
                            None, None, "no_labels", text)  # fmt: skip
    champion = (counts.both_right + b) / m
    challenger = (counts.both_right + c) / m
    diff = (c - b) / m
    se = math.sqrt(max((b + c) - (c - b) ** 2 / m, 0.0)) / m
    z = stats.norm.isf(alpha / 2)
    statistic, p = mcnemar_exact(b, c)
    verdict = "no_difference" if p > alpha else ("better" if c > b else "worse")
    text = (
        f"Challenger {'more' if c > b else 'less'} accurate: {challenger:.1%} vs {champion:.1%} "
        f"({diff * 100:+.1f} pts), McNemar p={p:.2g} on {b + c:,} disagreements"
        if verdict != "no_difference"
        else f"No difference in accuracy: {challenger:.1%} vs {champion:.1%}, McNemar p={p:.2g} on {b + c:,} "
        "disagreements"
    ) + f"; the models agree on {agreement:.1%} of {counts.n:,} requests."
    return ShadowResult(counts.n, agreement, (float(lo), float(hi)), m, champion, challenger, diff,
                        (diff - z * se, diff + z * se), (b, c), statistic, p, mcnemar_chi2(b, c), verdict,
                        text, (counts.both_right, counts.both_wrong))  # fmt: skip
