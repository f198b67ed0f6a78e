"""From binned counts to model quality: realised metrics, curves and calibration of labelled predictions, CBPE's
label-free estimates of every metric with NannyML's sampling-error bands, per chunk, and the verdict's rule.

Every formula lives in :mod:`workbench.stats.performance`; this module only slices the engine's counts
(:func:`workbench.sources.scores.binned_scores`) and hands them over.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench.quality.request import METRIC_NAMES, METRICS
from workbench.sources.scores import AUC_BINS
from workbench.stats.performance import (
    Confusion,
    SamplingComponents,
    binned_auc,
    binned_curves,
    brier_score,
    expected_confusion,
    reliability,
    sampling_components,
)

CURVE_BINS = 100  # the drawn ROC and PR curves: a point per 0.01 of score (the areas use the 1/1000 bins)
RELIABILITY_BINS = 10  # equal-width bins of the reliability diagram and its ECE (scikit-learn's default)
SUMS = ["n", "s", "labelled", "positives", "s_labelled", "s2_labelled", "s_positive"]


def per_bin(part: pd.DataFrame, bins: int = AUC_BINS) -> pd.DataFrame:
    """The counts summed per score bin of 1/``bins`` (every bin present, empty ones 0)."""
    coarse = part["bin"] * bins // AUC_BINS
    return part.groupby(coarse)[SUMS].sum().reindex(range(bins), fill_value=0)


def realised_confusion(part: pd.DataFrame) -> Confusion:
    """The labelled predictions' confusion matrix: TP = positives predicted 1, FP = negatives predicted 1 …"""
    one = part["prediction"] == 1
    pos, neg = part["positives"], part["labelled"] - part["positives"]
    return Confusion(float(pos[one].sum()), float(neg[one].sum()), float(pos[~one].sum()), float(neg[~one].sum()))


def probabilities(part: pd.DataFrame, mapping: np.ndarray | None, calibration_bins: int) -> np.ndarray:
    """Each row's calibrated probability: the isotonic map of its score bin, or its mean score without one."""
    if mapping is not None:
        return mapping[(part["bin"].to_numpy() * calibration_bins // AUC_BINS).astype(int)]
    return np.where(part["n"] > 0, part["s"] / part["n"].where(part["n"] > 0, 1), 0.0)


def estimates(part: pd.DataFrame, mapping: np.ndarray | None, calibration_bins: int) -> dict[str, Any]:
    """CBPE: the expected confusion matrix and the estimated accuracy, precision, recall, F1 and ROC AUC (the
    AUC of the expected label counts n·c and n·(1 − c) per score bin, NannyML's ``estimate_roc_auc``)."""
    c = probabilities(part, mapping, calibration_bins)
    one = (part["prediction"] == 1).to_numpy()
    n = part["n"].to_numpy(dtype=float)
    confusion = expected_confusion(np.where(one, n, 0.0), np.where(one, 0.0, n), c)
    bins = part["bin"].to_numpy()
    expected_pos = np.bincount(bins, weights=n * c, minlength=AUC_BINS)
    expected_neg = np.bincount(bins, weights=n * (1 - c), minlength=AUC_BINS)
    auc, _ = binned_auc(expected_pos, expected_neg)
    return {"confusion": _counts(confusion), **confusion.rates(), "roc_auc": auc}


def summarise(
    part: pd.DataFrame, mapping: np.ndarray | None, calibration_bins: int, confidence: float, min_labels: int
) -> dict[str, Any]:
    """Everything the report shows for one slice (a model version, the whole window, the reference):
    rows, labels, the confusion matrix, realised metrics (NaN below ``min_labels`` labels), the binning bounds
    of the areas, the drawn curves, the reliability diagram, and the CBPE estimates."""
    labelled = float(part["labelled"].sum())
    fine = per_bin(part)
    negatives = fine["labelled"] - fine["positives"]
    areas = binned_curves(fine["positives"].to_numpy(), negatives.to_numpy())
    coarse = per_bin(part, CURVE_BINS)
    drawn = binned_curves(coarse["positives"].to_numpy(), (coarse["labelled"] - coarse["positives"]).to_numpy())
    diagram = per_bin(part, RELIABILITY_BINS)
    brier = brier_score(part["s2_labelled"].sum(), part["s_positive"].sum(), part["positives"].sum(), labelled)
    calib = reliability(diagram["s_labelled"], diagram["positives"], diagram["labelled"], brier, confidence)
    confusion = realised_confusion(part)
    enough = labelled >= min_labels
    metrics = {**confusion.rates(), "roc_auc": areas.roc_auc, "pr_auc": areas.pr_auc, "brier": brier, "ece": calib.ece}
    return {
        "rows": int(part["n"].sum()),
        "labelled": int(labelled),
        "positives": int(part["positives"].sum()),
        "confusion": _counts(confusion),
        "metrics": {k: (v if enough else float("nan")) for k, v in metrics.items()},
        "binning_error": {"roc_auc": areas.roc_auc_max_error, "pr_auc": areas.pr_auc_max_error},
        "curves": {
            "roc": {"fpr": drawn.fpr, "tpr": drawn.tpr},
            "pr": {"recall": drawn.recall, "precision": drawn.precision},
        },
        "reliability": {
            "mean_score": calib.mean_score,
            "positive_rate": calib.positive_rate,
            "lower": calib.lower,
            "upper": calib.upper,
            "labelled": calib.labelled,
        },
        "estimated": estimates(part, mapping, calibration_bins),
    }


def _counts(c: Confusion) -> dict[str, float]:
    return {"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn}


def components(reference: pd.DataFrame) -> SamplingComponents:
    """NannyML's sampling-error components from the reference's labelled predictions."""
    fine = per_bin(reference)
    return sampling_components(
        realised_confusion(reference), fine["positives"].to_numpy(), (fine["labelled"] - fine["positives"]).to_numpy()
    )


def chunk_rows(
    frame: pd.DataFrame, mapping: np.ndarray | None, calibration_bins: int, errors: SamplingComponents, rule: dict
) -> pd.DataFrame:
    """Per chunk (``group``): rows, labels, and per metric the realised value (NaN below ``min_rows`` labels),
    the CBPE estimate, its band ± ``band_sigmas`` standard errors (on the labelled count when there are enough
    labels, else on all rows: where the realised value should fall if only covariate shift happened) and
    whether the realised value is inside it."""
    rows = []
    for group, part in frame.groupby("group", sort=True):
        labelled = float(part["labelled"].sum())
        enough = labelled >= rule["min_rows"]
        fine = per_bin(part)
        realised = {**realised_confusion(part).rates()}
        realised["roc_auc"] = binned_auc(fine["positives"], fine["labelled"] - fine["positives"])[0]
        estimated = estimates(part, mapping, calibration_bins)
        row: dict[str, Any] = {"chunk": group, "rows": int(part["n"].sum()), "labelled": int(labelled)}
        for m in METRICS:
            half = rule["band_sigmas"] * errors.standard_error(m, labelled if enough else row["rows"])
            value = realised[m] if enough else float("nan")
            inside = bool(abs(value - estimated[m]) <= half) if np.isfinite(value) else None
            row |= {
                f"realised_{m}": value,
                f"estimated_{m}": estimated[m],
                f"lower_{m}": estimated[m] - half,
                f"upper_{m}": estimated[m] + half,
                f"within_band_{m}": inside,
            }
        rows.append(row)
    return pd.DataFrame(rows)


def compare(current: dict, reference: dict, errors: SamplingComponents, sigmas: float) -> list[dict[str, Any]]:
    """Each metric of the window against the reference: the lower end of the band (reference − ``sigmas`` ×
    √(SE_window² + SE_reference²), NannyML's standard errors at each side's labelled count) and whether the
    window's realised value fell below it; also the gap to the window's own CBPE estimate."""
    out = []
    for m in METRICS:
        ref, cur, est = reference["metrics"][m], current["metrics"][m], current["estimated"][m]
        se_cur = errors.standard_error(m, current["labelled"])
        se = float(np.hypot(se_cur, errors.standard_error(m, reference["labelled"])))
        threshold = ref - sigmas * se
        defined = bool(np.isfinite(ref) and np.isfinite(cur) and np.isfinite(threshold))
        out.append(
            {
                "metric": m,
                "reference": ref,
                "current": cur,
                "band": sigmas * se,
                "threshold": threshold,
                "dropped": bool(defined and cur < threshold),
                "estimated": est,
                "estimate_band": sigmas * se_cur,
                "below_estimate": bool(np.isfinite(cur) and np.isfinite(est) and cur < est - sigmas * se_cur),
            }
        )
    return out


def decide(current: dict, reference: dict, comparisons: list[dict], min_labels: int) -> tuple[str, str, list[str]]:
    """(verdict word, sentence, reasons): ``insufficient`` below ``min_labels`` labels on either side (or a
    metric undefined everywhere), ``dropped`` when a realised metric fell below its band of the reference,
    else ``holds``. The reasons name each metric's number and its threshold, and any gap to the estimate."""
    name = lambda m: METRIC_NAMES[m]  # noqa: E731
    for side, summary in (("reference", reference), ("window", current)):
        if summary["rows"] == 0:
            return "insufficient", f"insufficient labels: no scored predictions in the {side}", []
    if reference["labelled"] < min_labels:
        return (
            "insufficient",
            f"insufficient labels: the reference has {reference['labelled']:,} labelled "
            f"predictions (at least {min_labels} needed)",
            [],
        )
    if current["labelled"] < min_labels:
        est = current["estimated"]
        estimated = f"; estimated without labels (CBPE): F1 {est['f1']:.2f}" if np.isfinite(est["f1"]) else ""
        return (
            "insufficient",
            f"insufficient labels: {current['labelled']:,} labelled predictions in the window "
            f"(at least {min_labels} needed){estimated}",
            [],
        )
    defined = [c for c in comparisons if np.isfinite(c["current"]) and np.isfinite(c["threshold"])]
    if not defined:
        return "insufficient", "insufficient labels: no metric is defined on both sides (one class only)", []
    reasons = [
        f"{name(c['metric'])} {c['current']:.3f} vs {c['reference']:.3f} reference: "
        + ("below the band's lower end " if c["dropped"] else "within the band, ≥ ")
        + f"{c['threshold']:.3f}"
        for c in defined
    ]
    reasons += [
        f"realised {name(c['metric'])} {c['current']:.3f} below its label-free estimate {c['estimated']:.3f} "
        f"(± {c['estimate_band']:.3f}): the scores no longer mean what they meant on the reference (concept drift)"
        for c in defined
        if c["below_estimate"]
    ]
    dropped = [c for c in defined if c["dropped"]]
    if dropped:
        worst = max(dropped, key=lambda c: (c["threshold"] - c["current"]) / max(c["band"], 1e-12))
        return (
            "dropped",
            f"quality dropped: {name(worst['metric'])} {worst['current']:.2f} vs "
            f"{worst['reference']:.2f} reference, outside the band",
            reasons,
        )
    f1 = next((c for c in defined if c["metric"] == "f1"), defined[0])
    return (
        "holds",
        f"quality holds: every metric within its band of the reference ({name(f1['metric'])} "
        f"{f1['current']:.2f} vs {f1['reference']:.2f})",
        reasons,
    )
