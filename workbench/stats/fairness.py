"""Group fairness from confusion counts per group: rates with Wilson CIs, fairlearn's disparities,
Aequitas-style comparisons with a reference group, and a stratified bootstrap on the counts.

Conventions (issue 5; the README repeats them):

- A group's counts are six cells: labelled predictions as TP, FP, FN, TN, and unlabelled
  predictions as predicted positive / negative (``CELLS``). Every statistic here is a function of
  these cells, so the engine's one GROUP BY is all the data we need.
- Rates follow fairlearn (``fairlearn.metrics``): selection rate = predicted positive share,
  accuracy, TPR (recall) = TP/(TP+FN), FPR = FP/(FP+TN), FNR = FN/(TP+FN), TNR, precision = TP/(TP+FP).
  The selection rate is over every prediction in scope (it needs no label) unless the settings say
  ``selection_rate_population = "labelled"`` (then it equals fairlearn's call on the labelled rows).
- A rate whose denominator is 0 is undefined (None) and left out of that rate's disparities.
  fairlearn reports 0 there (scikit-learn's confusion matrix turns 0/0 into 0): we do not, because
  a TPR of 0 from no positives is not a measurement.
- Disparities with fairlearn's definitions (``method="between_groups"``, ``agg="worst_case"``):
  difference = max − min over groups, ratio = min / max; demographic parity on the selection rate;
  equalized odds difference = max(TPR difference, FPR difference), ratio = min(TPR ratio, FPR ratio).
- Each group vs a reference group (Aequitas' "disparity"): ratio r_g / r_ref and difference
  r_g − r_ref, the pooled two-proportion z-test, Holm-adjusted over the comparisons that decide.
- Uncertainty: Wilson intervals for rates; for every disparity a seeded bootstrap that resamples rows
  *within* each group: percentile intervals for the gaps and ratios to the reference and for the
  between-groups ratios, and for the between-groups differences (max − min) the interval of
  :func:`range_intervals`, built from simultaneous intervals of the pairwise differences (the
  percentile interval of max − min is biased upward: with equal rates it never holds the true 0).
  Resampling n_g rows of a group with replacement only changes
  how many rows fall in each of its six cells, so it is exactly a multinomial draw of the cells with
  the observed cell shares: the stratified row bootstrap at no cost per row (5M rows cost as much as 50).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from workbench.stats.intervals import wilson_interval
from workbench.stats.multiple import adjust_pvalues
from workbench.stats.proportions import two_proportion_ztest

TP, FP, FN, TN, UNLABELLED_SELECTED, UNLABELLED_REJECTED = range(6)
CELLS = ("tp", "fp", "fn", "tn", "unlabelled_selected", "unlabelled_rejected")
LABELLED = (TP, FP, FN, TN)
ALL = (TP, FP, FN, TN, UNLABELLED_SELECTED, UNLABELLED_REJECTED)
MISSING_GROUP = "(missing)"  # a missing sensitive value is a group of its own, never dropped
BLANK_GROUP = "(blank)"  # so is an empty text value (a group named "" would be invisible in a table)
GROUP_JOINER = " × "  # an intersection's values joined, e.g. "18-25 × south"

# metric → (numerator cells, denominator cells, which minimum its denominator needs)
RATES: dict[str, tuple[tuple[int, ...], tuple[int, ...], str]] = {
    "selection_rate": ((TP, FP, UNLABELLED_SELECTED), ALL, "predictions"),
    "accuracy": ((TP, TN), LABELLED, "predictions"),
    "tpr": ((TP,), (TP, FN), "positives"),
    "fpr": ((FP,), (FP, TN), "negatives"),
    "fnr": ((FN,), (TP, FN), "positives"),
    "tnr": ((TN,), (FP, TN), "negatives"),
    "precision": ((TP,), (TP, FP), "predictions"),
}
LABELLED_SELECTION = ((TP, FP), LABELLED, "predictions")
METRIC_NAMES = {
    "selection_rate": "selection rate",
    "accuracy": "accuracy",
    "tpr": "TPR",
    "fpr": "FPR",
    "fnr": "FNR",
    "tnr": "TNR",
    "precision": "precision",
}
GROUP_METRICS = ("selection_rate", "accuracy", "tpr", "fpr", "fnr", "precision")


@dataclass(frozen=True)
class FairnessSettings:
    """Fairness thresholds and sizes; ``[fairness]`` in settings.toml overrides any of them (README: why)."""

    verdict_metrics: tuple[str, ...] = ("selection_rate", "tpr", "fpr")  # rates whose disparity decides
    max_ratio: float = 1.25  # fail beyond ×1.25 or below ×0.8 of the reference (Aequitas' τ = 0.8 band)
    four_fifths: float = 0.8  # flag a selection rate below 0.8 × the highest group's (EEOC rule of thumb)
    alpha: float = 0.05  # significance after the adjustment below
    adjust: Literal["holm", "bh", "none"] = "holm"  # over every (group, verdict metric) comparison
    min_positives: int = 30  # labelled positives a group needs before TPR/FNR are judged
    min_negatives: int = 30  # labelled negatives a group needs before FPR/TNR are judged
    min_group_size: int = 30  # predictions (or labelled rows, or predicted positives) for the other rates
    confidence: float = 0.95  # level of every interval
    bootstrap_resamples: int = 1000
    seed: int = 0
    reference_group: str = "largest"  # "largest" (most predictions) or a group's name
    selection_rate_population: Literal["all", "labelled"] = "all"
    conflict_policy: Literal["majority", "drop"] = "majority"  # a trace whose labels disagree
    label_types: tuple[str, ...] = ()  # feedback types that count as labels (empty: every labelled type)
    thumb_type: str = "thumb"  # positive-feedback rate = share of these with value 1
    rating_type: str = "rating"  # mean rating over these values
    time_chunk: Literal["day", "week"] = "week"
    calibration_bins: int = 10  # equal-width score bins (tenths) for calibration
    under_representation: float = 0.2  # flag a group whose labelled share is < (1 − 0.2) × its target share
    max_groups: int = 500  # refuse intersections with more groups than this


def definition(metric: str, population: str = "all") -> tuple[tuple[int, ...], tuple[int, ...], str]:
    """The (numerator cells, denominator cells, minimum kind) of a rate."""
    if metric == "selection_rate" and population == "labelled":
        return LABELLED_SELECTION
    if metric not in RATES:
        raise ValueError(f"unknown rate {metric!r}")
    return RATES[metric]


def rate_parts(cells: np.ndarray, metric: str, population: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator of a rate per group; ``cells`` has shape (..., groups, 6)."""
    num, den, _ = definition(metric, population)
    cells = np.asarray(cells, dtype=float)
    return cells[..., list(num)].sum(axis=-1), cells[..., list(den)].sum(axis=-1)


def rates(cells: np.ndarray, metric: str, population: str = "all") -> np.ndarray:
    """A rate per group (NaN where its denominator is 0)."""
    num, den = rate_parts(cells, metric, population)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def minimum(metric: str, settings: FairnessSettings) -> int:
    """The smallest denominator at which a rate is judged (positives, negatives or group size)."""
    kind = definition(metric, settings.selection_rate_population)[2]
    return {"positives": settings.min_positives, "negatives": settings.min_negatives}.get(kind, settings.min_group_size)


def minimum_text(metric: str, settings: FairnessSettings) -> str:
    """The minimum-size rule of a rate in words, e.g. '30 labelled positives'."""
    kind = definition(metric, settings.selection_rate_population)[2]
    what = {
        "positives": "labelled positives",
        "negatives": "labelled negatives",
        "predictions": {
            "selection_rate": "predictions",
            "accuracy": "labelled predictions",
            "precision": "labelled predicted positives",
        }.get(metric, "rows"),
    }[kind]
    return f"{minimum(metric, settings)} {what}"


@dataclass(frozen=True)
class GroupRate:
    """One rate of one group: value with its Wilson interval, numerator, denominator, and whether it is judged."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    numerator: int
    denominator: int
    sufficient: bool


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def group_rates(cells: np.ndarray, metric: str, settings: FairnessSettings) -> list[GroupRate]:
    """Each group's rate with a Wilson interval (Wilson 1927) and the minimum-size rule applied."""
    num, den = rate_parts(cells, metric, settings.selection_rate_population)
    low, high = wilson_interval(num, den, settings.confidence)
    value = rates(cells, metric, settings.selection_rate_population)
    floor = minimum(metric, settings)
    return [
        GroupRate(_num(v), _num(lo), _num(hi), int(x), int(n), bool(n >= floor and n > 0))
        for v, lo, hi, x, n in zip(value, low, high, num, den, strict=True)
    ]


def between_groups(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fairlearn's between-groups difference (max − min) and ratio (min / max) over the last axis, NaN-aware.

    Groups whose rate is undefined (NaN) are left out; all undefined → NaN; max = 0 → ratio NaN.
    Equals ``MetricFrame.difference()`` / ``MetricFrame.ratio()`` (method="between_groups").
    """
    values = np.asarray(values, dtype=float)
    defined = ~np.isnan(values)
    any_defined = defined.any(axis=-1)
    high = np.where(any_defined, np.max(np.where(defined, values, -np.inf), axis=-1), np.nan)
    low = np.where(any_defined, np.min(np.where(defined, values, np.inf), axis=-1), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(high > 0, low / np.where(high > 0, high, 1.0), np.nan)
    return high - low, ratio


def disparities(cells: np.ndarray, population: str = "all") -> dict[str, np.ndarray]:
    """fairlearn's disparities from cells of shape (..., groups, 6): each is an array of shape (...).

    demographic_parity_difference/ratio (selection rate), equalized_odds_difference = max(TPR, FPR
    differences), equalized_odds_ratio = min(TPR, FPR ratios) (fairlearn's ``agg="worst_case"``),
    equal_opportunity_difference/ratio (TPR), and ``<metric>_difference`` / ``<metric>_ratio`` per rate.
    """
    out: dict[str, np.ndarray] = {}
    for metric in GROUP_METRICS:
        out[f"{metric}_difference"], out[f"{metric}_ratio"] = between_groups(rates(cells, metric, population))
    out["demographic_parity_difference"] = out["selection_rate_difference"]
    out["demographic_parity_ratio"] = out["selection_rate_ratio"]
    out["equalized_odds_difference"] = np.fmax(out["tpr_difference"], out["fpr_difference"])
    out["equalized_odds_ratio"] = np.fmin(out["tpr_ratio"], out["fpr_ratio"])
    out["equal_opportunity_difference"] = out["tpr_difference"]
    out["equal_opportunity_ratio"] = out["tpr_ratio"]
    return out


FAIRLEARN_DISPARITIES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
)
# The four headline disparities (demographic parity and equalized odds, difference and ratio): the ones the
# page's metrics, the terminal, the champion-vs-challenger chart and the gate's evidence show.
HEADLINE_DISPARITIES = FAIRLEARN_DISPARITIES[:4]


def bootstrap_cells(cells: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """``resamples`` stratified bootstrap replicates of the cells, shape (resamples, groups, 6).

    Each group's n_g rows are resampled with replacement within the group, which is a multinomial
    draw Mult(n_g, cells_g / n_g); drawn as conditional binomials (x_k ~ Bin(n − Σ_{j<k} x_j,
    p_k / (1 − Σ_{j<k} p_j))), the standard exact construction, vectorised over replicates and groups.
    """
    cells = np.asarray(cells, dtype=float)
    n = cells.sum(axis=-1)
    rng = np.random.default_rng(seed)
    out = np.zeros((resamples, *cells.shape), dtype=float)
    remaining = np.broadcast_to(n, (resamples, *n.shape)).astype(np.int64)
    observed_left = n.copy()  # observed rows not yet in an earlier cell: p_k = cells_k / observed_left, exact
    for k in range(cells.shape[-1] - 1):
        p = np.where(observed_left > 0, cells[..., k] / np.where(observed_left > 0, observed_left, 1.0), 0.0)
        draw = rng.binomial(remaining, np.clip(p, 0.0, 1.0))
        out[..., k] = draw
        remaining = remaining - draw
        observed_left = observed_left - cells[..., k]
    out[..., -1] = remaining
    return out


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """The percentile interval of bootstrap samples (NaN replicates ignored; None when under half are defined)."""
    samples = np.asarray(samples, dtype=float)
    finite = samples[np.isfinite(samples)]
    if finite.size < max(samples.size / 2, 1):
        return None, None
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Comparison:
    """One group vs the reference group on one rate (Aequitas' disparity, with a test)."""

    group: str
    metric: str
    value: float | None
    reference_value: float | None
    difference: float | None
    difference_ci: tuple[float | None, float | None]
    ratio: float | None
    ratio_ci: tuple[float | None, float | None]
    z: float | None
    p_value: float | None
    p_adjusted: float | None
    sufficient: bool
    decides: bool  # a verdict metric: part of the adjusted family
    outside: bool  # ratio outside [1/max_ratio, max_ratio]
    significant: bool
    status: str  # fail | pass | insufficient data | info

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (no NaN)."""
        return {
            "metric": self.metric,
            "value": self.value,
            "reference_value": self.reference_value,
            "difference": self.difference,
            "difference_ci": list(self.difference_ci),
            "ratio": self.ratio,
            "ratio_ci": list(self.ratio_ci),
            "z": self.z,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "sufficient": self.sufficient,
            "outside_ratio_band": self.outside,
            "significant": self.significant,
            "status": self.status,
        }


def _ratio(value: float, reference: float) -> float:
    if reference > 0:
        return value / reference
    return math.inf if value > 0 else math.nan


def compare_to_reference(
    groups: list[str], cells: np.ndarray, reference: int, settings: FairnessSettings, boot: np.ndarray | None = None
) -> list[Comparison]:
    """Every group (but the reference) vs the reference on every rate, tested and Holm-adjusted.

    ratio = r_g / r_ref, difference = r_g − r_ref, each with a bootstrap percentile interval from
    ``boot`` (stratified replicates of the cells); z and p from the pooled two-proportion z-test
    (= statsmodels ``proportions_ztest``). A comparison is judged only when both groups meet the
    rate's minimum size; the verdict metrics' judged comparisons form one family for the adjustment.
    A comparison fails when its ratio is outside [1/max_ratio, max_ratio] and its adjusted p < alpha.
    """
    population = settings.selection_rate_population
    rows = []
    for metric in GROUP_METRICS:
        num, den = rate_parts(cells, metric, population)
        value = rates(cells, metric, population)
        floor = minimum(metric, settings)
        samples = None if boot is None else rates(boot, metric, population)
        for g, name in enumerate(groups):
            if g == reference:
                continue
            test = two_proportion_ztest(num[g], den[g], num[reference], den[reference])
            diff_ci = ratio_ci = (None, None)
            if samples is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    diff_ci = percentile_interval(samples[:, g] - samples[:, reference], settings.confidence)
                    ratio_ci = percentile_interval(samples[:, g] / samples[:, reference], settings.confidence)
            ratio = _ratio(value[g], value[reference])
            rows.append(
                {
                    "group": name,
                    "metric": metric,
                    "value": value[g],
                    "reference_value": value[reference],
                    "ratio": ratio,
                    "difference_ci": diff_ci,
                    "ratio_ci": ratio_ci,
                    "z": test.statistic,
                    "p_value": test.p_value,
                    "sufficient": bool(min(den[g], den[reference]) >= max(floor, 1)),
                    "decides": metric in settings.verdict_metrics,
                }
            )
    family = [r["p_value"] if r["sufficient"] and r["decides"] else np.nan for r in rows]
    adjusted = adjust_pvalues(family, settings.adjust)
    out = []
    for row, p_adj in zip(rows, adjusted, strict=True):
        ratio = row["ratio"]
        outside = bool(
            math.isinf(ratio) or (math.isfinite(ratio) and not (1 / settings.max_ratio <= ratio <= settings.max_ratio))
        )
        significant = bool(np.isfinite(p_adj) and p_adj < settings.alpha)
        if not row["decides"]:
            status = "info"
        elif not row["sufficient"]:
            status = "insufficient data"
        else:
            status = "fail" if outside and significant else "pass"
        out.append(
            Comparison(
                group=row["group"],
                metric=row["metric"],
                value=_num(row["value"]),
                reference_value=_num(row["reference_value"]),
                difference=_num(row["value"] - row["reference_value"]),
                difference_ci=row["difference_ci"],
                ratio=_num(ratio),
                ratio_ci=row["ratio_ci"],
                z=_num(row["z"]),
                p_value=_num(row["p_value"]),
                p_adjusted=_num(p_adj),
                sufficient=row["sufficient"],
                decides=row["decides"],
                outside=outside,
                significant=significant,
                status=status,
            )
        )
    return out


def disparity_intervals(boot: np.ndarray, settings: FairnessSettings) -> dict[str, tuple[float | None, float | None]]:
    """Bootstrap percentile interval of every fairlearn disparity (see :func:`disparities`).

    Biased upward for the max − min differences (their replicates never fall below the estimate's
    noise floor): the audit replaces those with :func:`range_intervals`.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        replicated = disparities(boot, settings.selection_rate_population)
    return {name: percentile_interval(values, settings.confidence) for name, values in replicated.items()}


# between-groups differences (max − min) whose interval comes from the pairwise differences, and the rates behind each
RANGE_DISPARITIES: dict[str, tuple[str, ...]] = {
    **{f"{metric}_difference": (metric,) for metric in GROUP_METRICS},
    "demographic_parity_difference": ("selection_rate",),
    "equal_opportunity_difference": ("tpr",),
    "equalized_odds_difference": ("tpr", "fpr"),
}


def range_interval(
    point: list[np.ndarray], replicates: list[np.ndarray], confidence: float
) -> tuple[float | None, float | None]:
    """Interval for D = max over the given rates of (max − min over groups), from simultaneous pairwise intervals.

    ``point[m]`` holds rate m per group (NaN = undefined, left out as in :func:`between_groups`) and
    ``replicates[m]`` its bootstrap replicates, shape (B, groups). For every pair of groups (i, j) and
    rate, δ̂_ij = r_i − r_j with its bootstrap standard error s_ij; the band δ̂_ij ± c·s_ij holds all
    pairs at once with ``confidence``, c being that quantile of the replicates' max_ij |δ*_ij − δ̂_ij|/s_ij
    (the bootstrap max-t simultaneous band: Romano & Wolf 2005, Econometrica 73(4); Hothorn, Bretz &
    Westfall 2008 for the pairwise case). D = max_ij |δ_ij|, so on that event D lies in
    [max_ij distance of 0 to band_ij, max_ij largest |end| of band_ij]: coverage ≥ the band's.
    At equal rates all δ_ij = 0, and the interval holds 0 exactly when every pairwise band does
    (honest 95% at the null, where the percentile interval of max − min never reaches 0); away from
    it the interval is somewhat conservative. [0, 0] with one defined group (max − min is 0), None
    with none or when under half the replicates are defined.
    """
    estimate, deviation, spread = [], [], []
    for values, boot in zip(point, replicates, strict=True):
        values = np.asarray(values, dtype=float)
        boot = np.asarray(boot, dtype=float)
        i, j = np.triu_indices(values.size, k=1)
        keep = np.isfinite(values[i]) & np.isfinite(values[j])
        i, j = i[keep], j[keep]
        diff = values[i] - values[j]
        with np.errstate(invalid="ignore"):
            boot_diff = boot[:, i] - boot[:, j]
            se = np.nanstd(boot_diff, axis=0) if boot_diff.size else np.zeros(0)
        estimate.append(diff)
        spread.append(se)
        with np.errstate(divide="ignore", invalid="ignore"):
            deviation.append(np.where(se > 0, np.abs(boot_diff - diff) / np.where(se > 0, se, 1.0), 0.0))
    diff = np.concatenate(estimate)
    if diff.size == 0:  # one defined group: max − min is 0 exactly (as the point estimate); none: undefined
        return (0.0, 0.0) if any(np.isfinite(np.asarray(v, dtype=float)).any() for v in point) else (None, None)
    se = np.concatenate(spread)
    se = np.where(np.isfinite(se), se, 0.0)
    worst = np.concatenate(deviation, axis=1)
    defined = np.isfinite(worst).any(axis=1)
    if defined.sum() < max(worst.shape[0] / 2, 1):
        return None, None
    c = float(np.quantile(np.nanmax(worst[defined], axis=1), confidence))
    low, high = diff - c * se, diff + c * se
    nearest = np.where(low > 0, low, np.where(high < 0, -high, 0.0))  # distance of 0 to each pair's band
    farthest = np.maximum(np.abs(low), np.abs(high))
    return float(nearest.max()), float(farthest.max())


def range_intervals(
    cells: np.ndarray, boot: np.ndarray, population: str, confidence: float
) -> dict[str, tuple[float | None, float | None]]:
    """:func:`range_interval` of every between-groups difference in :data:`RANGE_DISPARITIES`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        point = {m: rates(cells, m, population) for m in GROUP_METRICS}
        replicated = {m: rates(boot, m, population) for m in GROUP_METRICS}
    return {
        name: range_interval([point[m] for m in metrics], [replicated[m] for m in metrics], confidence)
        for name, metrics in RANGE_DISPARITIES.items()
    }
