"""Bayesian view of an A/B comparison: probability to beat control and expected loss.

Not 1 − p: the p-value is the probability of data at least this extreme if there were no difference;
the probability to beat control is the posterior probability that the variant is better, given the data
and a prior. They answer different questions and differ in value (p = 0.05 two-sided is roughly a 97.5%
chance to beat control under a flat prior, not 95%).

Proportions: Beta(1, 1) prior per arm, so the posterior is Beta(1 + x, 1 + n − x); P(B > A) is exact
(Evan Miller's closed form, a sum of α_B terms) up to ``EXACT_TERMS`` terms, else from seeded draws.
Means and ratios: a flat prior on the difference, so it is normal with the estimate and its SE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from workbench.stats import dist
from workbench.stats.abtest import ProportionStats

EXACT_TERMS = 250_000  # the exact sum costs ~0.1 s per 200k terms (×5 sums); beyond, 400k draws
DRAWS = 400_000


@dataclass(frozen=True)
class BayesResult:
    """P(variant better than control) and the expected loss (metric units) of shipping it or keeping control."""

    prob_beat_control: float | None
    expected_loss_variant: float | None
    expected_loss_control: float | None
    method: str


def _prob_b_beats_a(aa: float, ba: float, ab: float, bb: float) -> float:
    """P(X_B > X_A), X ~ Beta(α, β), α_B an integer (Evan Miller 2015).

    Σ_{i<α_B} B(α_A + i, β_A + β_B)/((β_B + i)·B(1 + i, β_B)·B(α_A, β_A)), summed in log space.
    """
    i = np.arange(int(ab), dtype=float)
    log_terms = special.betaln(aa + i, ba + bb) - np.log(bb + i) - special.betaln(1 + i, bb) - special.betaln(aa, ba)
    return float(np.clip(np.exp(log_terms).sum(), 0.0, 1.0))


def _prob_greater(aa: float, ba: float, ab: float, bb: float) -> float:
    """P(X_B > X_A) summing over the shorter of α_A, α_B (P(B > A) = 1 − P(A > B): ties have probability 0)."""
    return _prob_b_beats_a(aa, ba, ab, bb) if ab <= aa else 1.0 - _prob_b_beats_a(ab, bb, aa, ba)


def beta_binomial(
    control: ProportionStats, variant: ProportionStats, higher_is_better: bool = True, seed: int = 0
) -> BayesResult:
    """Beta(1, 1)-binomial posterior: P(p_B > p_A) and E[max(p_A − p_B, 0)] (loss of shipping B), exact when feasible.

    E[max(p_A − p_B, 0)] = α_A/(α_A + β_A)·P(A⁺ > B) − α_B/(α_B + β_B)·P(A > B⁺), where ⁺ adds one to α
    (Stucchio 2015, "Bayesian A/B testing at VWO"). ``higher_is_better=False`` swaps the direction.
    """
    if control.n == 0 or variant.n == 0:
        return BayesResult(None, None, None, "undefined: an arm has no observations")
    aa, ba = 1.0 + control.successes, 1.0 + control.n - control.successes
    ab, bb = 1.0 + variant.successes, 1.0 + variant.n - variant.successes
    if min(aa, ab) + 1 <= EXACT_TERMS:
        p_b = _prob_greater(aa, ba, ab, bb)
        mean_a, mean_b = aa / (aa + ba), ab / (ab + bb)
        a_beats_b = mean_a * (1 - _prob_greater(aa + 1, ba, ab, bb)) - mean_b * (1 - _prob_greater(aa, ba, ab + 1, bb))
        b_beats_a = mean_b * _prob_greater(aa, ba, ab + 1, bb) - mean_a * _prob_greater(aa + 1, ba, ab, bb)
        method = "exact (Beta(1,1) prior)"
    else:
        rng = np.random.default_rng(seed)
        pa, pb = rng.beta(aa, ba, DRAWS), rng.beta(ab, bb, DRAWS)
        p_b = float(np.mean(pb > pa))
        a_beats_b, b_beats_a = float(np.mean(np.maximum(pa - pb, 0))), float(np.mean(np.maximum(pb - pa, 0)))
        method = f"{DRAWS:,} seeded draws (seed {seed}, Beta(1,1) prior)"
    if higher_is_better:
        return BayesResult(p_b, max(a_beats_b, 0.0), max(b_beats_a, 0.0), method)
    return BayesResult(1.0 - p_b, max(b_beats_a, 0.0), max(a_beats_b, 0.0), method)


def normal_posterior(diff: float, se: float, higher_is_better: bool = True) -> BayesResult:
    """Flat prior, posterior Δ ~ N(Δ̂, SE²): P(Δ > 0) = Φ(Δ̂/SE), loss of shipping E[max(−Δ, 0)] = SE·φ(d) − Δ̂·Φ(−d).

    d = Δ̂/SE; the loss of keeping control is E[max(Δ, 0)] = SE·φ(d) + Δ̂·Φ(d). Directions swap when lower is better.
    """
    if not (math.isfinite(diff) and math.isfinite(se)) or se <= 0:
        return BayesResult(None, None, None, "undefined: no standard error")
    sign = 1.0 if higher_is_better else -1.0
    d = sign * diff / se
    density = dist.norm_pdf(d)
    loss_ship = se * density - sign * diff * dist.norm_cdf(-d)
    loss_keep = se * density + sign * diff * dist.norm_cdf(d)
    return BayesResult(dist.norm_cdf(d), max(loss_ship, 0.0), max(loss_keep, 0.0), "normal (flat prior)")
