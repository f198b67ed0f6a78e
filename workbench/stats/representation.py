"""Representation audit: does the labelled feedback (what a retrain learns from) look like the population?

Per group: its share of predictions, its share of labelled predictions, its coverage (labelled /
predictions, Wilson interval) and, when a reference population is given, its share there. The
*target* share of a group is its reference-population share when a population file is given, else
its share of predictions (the population the model serves). Compared with JS distance (base 2,
``workbench.stats.divergence.js_distance``) and a chi-square goodness-of-fit of the labelled counts
against the target shares (``scipy.stats.chisquare``). A group whose labelled share is below
(1 − threshold) × its target share is under-represented; its oversampling factor is how many times
its labelled rows must be repeated, the others unchanged, to reach the target share:
n'_g = q_g·(N − n_g)/(1 − q_g), factor = n'_g / n_g.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from workbench.stats import dist
from workbench.stats.divergence import js_distance, shares
from workbench.stats.intervals import wilson_interval


@dataclass(frozen=True)
class GroupRepresentation:
    """One group's counts and shares in the predictions, the labelled feedback and the target."""

    group: str
    predictions: int
    labelled: int
    share_predictions: float | None
    share_labelled: float | None
    coverage: float | None
    coverage_ci: tuple[float | None, float | None]
    population_share: float | None
    target_share: float | None
    representation_ratio: float | None  # share_labelled / target_share
    under_represented: bool
    oversampling_factor: float | None


@dataclass(frozen=True)
class GoodnessOfFit:
    """Chi-square goodness of fit of observed counts to expected shares, with the JS distance of the shares."""

    statistic: float | None
    df: int
    p_value: float | None
    js_distance: float | None


@dataclass(frozen=True)
class Representation:
    """The representation audit: per group, the fits, the target and the flags."""

    groups: tuple[GroupRepresentation, ...]
    target: str  # "reference population" | "predictions"
    labelled_vs_predictions: GoodnessOfFit
    labelled_vs_population: GoodnessOfFit | None
    predictions_vs_population: GoodnessOfFit | None
    threshold: float
    warnings: tuple[str, ...] = ()

    def target_shares(self) -> dict[str, float]:
        """``{group: target share}`` for every group with a positive target (the curation's ``target_shares``)."""
        return {g.group: g.target_share for g in self.groups if g.target_share}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["groups"] = [{**asdict(g), "coverage_ci": list(g.coverage_ci)} for g in self.groups]
        out["target_shares"] = self.target_shares()
        return out


def oversampling_factor(labelled: float, total_labelled: float, target_share: float) -> float | None:
    """Times a group's labelled rows must be repeated (others unchanged) to reach ``target_share``.

    n' = q·(N − n)/(1 − q), factor = n'/n; None when the group has no rows or the target is 1.
    """
    if labelled <= 0 or not 0 < target_share < 1:
        return None
    return target_share * (total_labelled - labelled) / (1 - target_share) / labelled


def goodness_of_fit(observed: np.ndarray, expected_shares: np.ndarray) -> GoodnessOfFit:
    """Chi-square GOF of ``observed`` counts to ``expected_shares`` (= scipy.stats.chisquare), and JS distance.

    Groups with an expected share of 0 and no observations are left out (they add nothing); an
    observation where the expected share is 0 makes the statistic undefined (None): the fit is impossible.
    """
    observed = np.asarray(observed, dtype=float)
    expected_shares = shares(expected_shares)
    total = observed.sum()
    js = js_distance(observed, expected_shares) if total > 0 and expected_shares.sum() > 0 else None
    keep = (expected_shares > 0) | (observed > 0)
    if total <= 0 or keep.sum() < 2 or np.any((expected_shares == 0) & (observed > 0)):
        return GoodnessOfFit(None, max(int(keep.sum()) - 1, 0), None, js)
    expected = total * expected_shares[keep]
    statistic = float(np.sum((observed[keep] - expected) ** 2 / expected))  # Pearson's X²; p from χ²(k − 1)'s tail
    df = int(keep.sum()) - 1
    return GoodnessOfFit(statistic, df, dist.chi2_sf(statistic, df), js)


def _share(x: float, total: float) -> float | None:
    return x / total if total > 0 else None


def representation(
    groups: list[str],
    predictions: np.ndarray,
    labelled: np.ndarray,
    population: dict[str, float] | None = None,
    threshold: float = 0.2,
    confidence: float = 0.95,
) -> Representation:
    """The representation audit of labelled feedback vs predictions (and vs a reference population).

    ``population`` maps group → share (normalised to sum 1 here); groups named there but absent
    from the data are added with zero counts; groups in the data but not in the file get share 0.
    """
    warnings: list[str] = []
    groups = list(groups)
    predictions = np.asarray(predictions, dtype=float)
    labelled = np.asarray(labelled, dtype=float)
    if population:
        absent = [g for g in population if g not in groups]
        groups += absent
        predictions = np.concatenate([predictions, np.zeros(len(absent))])
        labelled = np.concatenate([labelled, np.zeros(len(absent))])
        if absent:
            warnings.append(f"in the reference population but not in the data: {', '.join(absent)}")
        unknown = [g for g in groups if g not in population]
        if unknown:
            warnings.append(f"not in the reference population file (target share 0): {', '.join(unknown)}")
        total_share = sum(population.values())
        if abs(total_share - 1) > 0.01:
            warnings.append(f"reference population shares sum to {total_share:.3f}; normalised to 1")
        pop = np.array([population.get(g, 0.0) for g in groups], dtype=float)
        pop = pop / pop.sum() if pop.sum() > 0 else pop
    else:
        pop = None
    n_pred, n_lab = predictions.sum(), labelled.sum()
    target = pop if pop is not None else shares(predictions)
    low, high = wilson_interval(labelled, predictions, confidence)
    rows = []
    for i, group in enumerate(groups):
        share_lab = _share(labelled[i], n_lab)
        q = float(target[i]) if n_pred > 0 or pop is not None else None
        ratio = share_lab / q if share_lab is not None and q else None
        under = bool(q and share_lab is not None and share_lab < (1 - threshold) * q)
        rows.append(
            GroupRepresentation(
                group=group,
                predictions=int(predictions[i]),
                labelled=int(labelled[i]),
                share_predictions=_share(predictions[i], n_pred),
                share_labelled=share_lab,
                coverage=_share(labelled[i], predictions[i]),
                coverage_ci=(
                    None if math.isnan(low[i]) else float(low[i]),
                    None if math.isnan(high[i]) else float(high[i]),
                ),
                population_share=None if pop is None else float(pop[i]),
                target_share=q,
                representation_ratio=ratio,
                under_represented=under,
                oversampling_factor=oversampling_factor(labelled[i], n_lab, q) if under and q else None,
            )
        )
    return Representation(
        groups=tuple(rows),
        target="reference population" if pop is not None else "predictions",
        labelled_vs_predictions=goodness_of_fit(labelled, predictions),
        labelled_vs_population=None if pop is None else goodness_of_fit(labelled, pop),
        predictions_vs_population=None if pop is None else goodness_of_fit(predictions, pop),
        threshold=threshold,
        warnings=tuple(warnings),
    )
