"""Fairness trade-offs: every model version on accuracy vs disparity (with the Pareto front), and a preview of
fairlearn's ``ThresholdOptimizer`` post-processing, both built from the engine's counts.

- :func:`compare_versions`: the cells frame split by model version (one GROUP BY, ``queries.cells``) → per
  version the labelled accuracy (Wilson) and the chosen between-groups disparity (its interval from the
  simultaneous pairwise bootstrap, ``stats.fairness.range_intervals``) → the front (``stats.pareto``) and the
  champion-vs-challenger verdict: better | worse | tradeoff | no_difference | insufficient.
- :func:`mitigation`: labelled, scored rows counted per (group, label, prediction, score bin of 0.01) →
  ``stats.threshold_optimizer.fit_thresholds`` → the group thresholds, the accuracy and disparity before (the
  model's own predictions) and after (the thresholds' expected predictions), with bootstrap intervals that hold
  the thresholds fixed and resample the rows → reduces | no_gain | insufficient.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.fairness.sections import cell_array
from workbench.stats.clean import finite
from workbench.stats.fairness import (
    RANGE_DISPARITIES,
    FairnessSettings,
    bootstrap_cells,
    disparities,
    percentile_interval,
    range_intervals,
    rate_parts,
    rates,
)
from workbench.stats.intervals import wilson_interval
from workbench.stats.pareto import pareto_front
from workbench.stats.threshold_optimizer import CONSTRAINTS, GRID_SIZE, expected_selected, fit_thresholds

MITIGATION_BINS = 100  # score bins of 0.01: thresholds land on hundredths (fairlearn: between distinct scores)
DISPARITIES = tuple(RANGE_DISPARITIES)  # the between-groups differences a comparison can be drawn on
CONSTRAINT_DISPARITY = {"demographic_parity": "demographic_parity_difference",
                        "equalized_odds": "equalized_odds_difference"}  # fmt: skip
PREVIEW_NOTE = (
    "A preview of a post-processing option, not a retrained model: fairlearn's ThresholdOptimizer (Hardt, Price & "
    "Srebro 2016) moves the decision threshold per group on the model's scores, so the sensitive attribute is "
    "needed at prediction time. Fitted and evaluated on the same labelled window (in-sample, so optimistic); "
    "the predictions it would make are randomised between two thresholds, and its rates are their expectation."
)
PAIR_VERDICTS = ("better", "worse", "tradeoff", "no_difference", "insufficient")
MITIGATION_VERDICTS = ("reduces", "no_gain", "insufficient")


def _interval(pair: tuple[float | None, float | None]) -> list[float | None]:
    return [finite(pair[0]), finite(pair[1])]


def _ci_text(pair: Sequence[float | None]) -> str:
    low, high = pair
    return "" if low is None or high is None else f" [{low:+.3f}, {high:+.3f}]"


def _sign(pair: Sequence[float | None]) -> int:
    """+1 / −1 when the interval lies above / below 0, else 0 (no clear change)."""
    low, high = pair
    if low is None or high is None:
        return 0
    return 1 if low > 0 else -1 if high < 0 else 0


def _version_point(cells: np.ndarray, disparity: str, settings: FairnessSettings, seed: int) -> dict[str, Any]:
    """One version's accuracy (Wilson) and disparity (range interval), with bootstrap replicates of both."""
    population = settings.selection_rate_population
    correct, labelled = (float(v[0]) for v in rate_parts(cells.sum(axis=0, keepdims=True), "accuracy", population))
    low, high = wilson_interval(correct, labelled, settings.confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = disparities(cells, population)[disparity]
    boot = (
        bootstrap_cells(cells, settings.bootstrap_resamples, settings.seed + seed)
        if settings.bootstrap_resamples
        else None
    )
    interval: tuple[float | None, float | None] = (None, None)
    replicates: dict[str, np.ndarray] = {}
    if boot is not None:
        interval = range_intervals(cells, boot, population, settings.confidence)[disparity]
        with np.errstate(divide="ignore", invalid="ignore"):
            replicates = {"disparity": disparities(boot, population)[disparity],
                          "accuracy": rates(boot.sum(axis=1, keepdims=True), "accuracy", population)[:, 0]}  # fmt: skip
    sufficient = labelled >= max(settings.min_group_size, 1) and finite(value) is not None
    return {
        "n": int(cells.sum()),
        "n_labelled": int(labelled),
        "accuracy": finite(correct / labelled) if labelled else None,
        "accuracy_ci": [finite(low), finite(high)],
        "disparity": finite(value),
        "disparity_ci": _interval(interval),
        "sufficient": bool(sufficient),
        "_replicates": replicates,
    }


def compare_versions(
    frame: pd.DataFrame,
    groups: Sequence[str],
    versions: Sequence[str],
    pair: tuple[str, str] | None,
    disparity: str,
    settings: FairnessSettings,
) -> dict[str, Any]:
    """Every model version as a point (accuracy, disparity) with intervals, the Pareto front, and the verdict on
    the challenger vs the champion. ``versions``: in serving order (oldest first); ``frame``: the cells frame
    with a ``model_version`` column, and ``in_overlap`` when champion and challenger served at the same time:
    then every version is read on that period (the same traffic), else each on the rows it served."""
    same_period = "in_overlap" in frame and bool(frame["in_overlap"].fillna(False).astype(bool).any())
    if same_period:
        frame = frame[frame["in_overlap"].fillna(False).astype(bool)]
    points = []
    for k, version in enumerate(versions):
        cells = cell_array(frame[frame["model_version"] == version], groups)
        if cells.sum() > 0:
            points.append({"version": version, **_version_point(cells, disparity, settings, 101 + k)})
    front = pareto_front([np.nan if p["accuracy"] is None or not p["sufficient"] else p["accuracy"] for p in points],
                         [np.nan if p["disparity"] is None else p["disparity"] for p in points])  # fmt: skip
    for point, on in zip(points, front, strict=True):
        point["on_front"] = bool(on)
    out: dict[str, Any] = {
        "disparity": disparity,
        "champion": pair[0] if pair else None,
        "challenger": pair[1] if pair else None,
        "versions": points,
        "front": [p["version"] for p in points if p["on_front"]],
        "same_period": same_period,
        "note": (
            "every version on the period champion and challenger both served (the same traffic)"
            if same_period
            else "each version on the rows it served in the window (versions that served at different times saw "
            "different traffic)"
        )
        + "; accuracy over labelled predictions; on the front: no other version is at "
        "least as accurate and at least as fair",
    }
    out.update(_pair_verdict(points, pair, disparity, settings))
    for point in points:
        point.pop("_replicates")
    return out


def _pair_verdict(
    points: list[dict[str, Any]], pair: tuple[str, str] | None, disparity: str, settings: FairnessSettings
) -> dict[str, Any]:
    """Challenger minus champion on accuracy and disparity, each with the percentile interval of the difference of
    independent bootstrap replicates; a change counts when its interval excludes 0."""
    name = disparity.replace("_", " ")
    by_version = {p["version"]: p for p in points}
    if pair is None or pair[0] not in by_version or pair[1] not in by_version:
        text = "insufficient: needs two model versions in scope to compare"
        return {"verdict": "insufficient", "verdict_text": text, "reasons": [], "change": None}
    champion, challenger = by_version[pair[0]], by_version[pair[1]]
    reasons = [
        f"{p['version']}: accuracy {p['accuracy']:.3f}, {name} {p['disparity']:.3f} ({p['n_labelled']:,} labelled)"
        for p in (champion, challenger)
        if p["accuracy"] is not None and p["disparity"] is not None
    ]
    short = [p["version"] for p in (champion, challenger) if not p["sufficient"]]
    if short:
        text = (f"insufficient: {', '.join(short)} has fewer than {settings.min_group_size} labelled predictions "
                f"or an undefined {name}")  # fmt: skip
        return {"verdict": "insufficient", "verdict_text": text, "reasons": reasons, "change": None}
    d_acc = challenger["accuracy"] - champion["accuracy"]
    d_disp = challenger["disparity"] - champion["disparity"]
    acc_ci = disp_ci = (None, None)
    if champion["_replicates"] and challenger["_replicates"]:
        with np.errstate(invalid="ignore"):
            acc_ci = percentile_interval(challenger["_replicates"]["accuracy"] - champion["_replicates"]["accuracy"],
                                         settings.confidence)  # fmt: skip
            disp_ci = percentile_interval(challenger["_replicates"]["disparity"] - champion["_replicates"]["disparity"],
                                          settings.confidence)  # fmt: skip
    acc, disp = _sign(acc_ci), _sign(disp_ci)
    gain = f"accuracy {d_acc:+.3f}{_ci_text(acc_ci)}"
    cost = f"{name} {d_disp:+.3f}{_ci_text(disp_ci)}"
    c, ch = champion["version"], challenger["version"]
    if acc_ci[0] is None or disp_ci[0] is None:
        verdict, text = (
            "insufficient",
            f"insufficient: no interval for the changes (bootstrap resamples = 0): {gain}, {cost}",
        )
    elif acc != 0 and acc == disp:
        verdict = "tradeoff"
        text = (f"tradeoff: {ch} gains accuracy at a fairness cost vs {c}: {gain}, {cost}" if acc > 0
                else f"tradeoff: {ch} is fairer but less accurate than {c}: {cost}, {gain}")  # fmt: skip
    elif acc > 0 or disp < 0:
        verdict, text = "better", f"better: {ch} improves on {c} with no fairness or accuracy cost: {gain}, {cost}"
    elif acc < 0 or disp > 0:
        verdict, text = "worse", f"worse: {ch} is less accurate or less fair than {c}, with no gain: {gain}, {cost}"
    else:
        verdict, text = "no_difference", f"no difference: {ch} vs {c}: {gain}, {cost} (both intervals hold 0)"
    reasons.append(f"a change counts when its {settings.confidence:.0%} bootstrap interval excludes 0")
    change = {"accuracy": finite(d_acc), "accuracy_ci": _interval(acc_ci), "disparity": finite(d_disp),
              "disparity_ci": _interval(disp_ci)}  # fmt: skip
    return {"verdict": verdict, "verdict_text": text, "reasons": reasons, "change": change}


# --- mitigation preview ------------------------------------------------------------------------------------


def score_counts(frame: pd.DataFrame, groups: Sequence[str], bins: int) -> np.ndarray:
    """Labelled, scored rows per (group, cell, score bin), shape (groups, 4, bins); cells TP, FP, FN, TN of the
    model's own predictions. ``frame``: ``queries.cells`` with ``edges`` (its ``decile`` = the score bin)."""
    scored = frame[frame["decile"] >= 0]
    sums = scored.groupby(["group", "decile"])[["tp", "fp", "fn", "tn"]].sum()
    full = sums.reindex(pd.MultiIndex.from_product([list(groups), range(bins)]), fill_value=0.0)
    return full.to_numpy(dtype=float).reshape(len(groups), bins, 4).transpose(0, 2, 1)


def _six(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    """Four confusion cells as the audit's six (no unlabelled rows), shape (..., groups, 6)."""
    zeros = np.zeros_like(tp)
    return np.stack([tp, fp, fn, tn, zeros, zeros], axis=-1)


def _before_after(counts: np.ndarray, fit: Any) -> tuple[np.ndarray, np.ndarray]:
    """The six cells per group with the model's predictions and with the fitted thresholds (expected counts);
    ``counts`` of shape (..., groups, 4, bins)."""
    tp, fp, fn, tn = (counts[..., i, :] for i in range(4))
    positives, negatives = tp + fn, fp + tn
    before = _six(tp.sum(-1), fp.sum(-1), fn.sum(-1), tn.sum(-1))
    tp_after, fp_after = expected_selected(fit, positives, negatives)
    after = _six(tp_after, fp_after, positives.sum(-1) - tp_after, negatives.sum(-1) - fp_after)
    return before, after


def mitigation(
    counts: np.ndarray, groups: Sequence[str], labels: dict[str, str], constraint: str, settings: FairnessSettings
) -> dict[str, Any]:
    """The ThresholdOptimizer preview under ``constraint`` from :func:`score_counts`' counts: thresholds per group,
    accuracy and the constraint's disparity before and after with intervals, the change with its interval, the
    verdict (reduces: the disparity's change interval lies below 0)."""
    if constraint not in CONSTRAINTS:
        raise ValueError(f"constraint must be one of {', '.join(CONSTRAINTS)}")
    disparity = CONSTRAINT_DISPARITY[constraint]
    name = disparity.replace("_", " ")
    base = {"constraint": constraint, "disparity": disparity, "note": PREVIEW_NOTE, "bins": counts.shape[-1],
            "grid_size": GRID_SIZE, "operator": ">=", "thresholds": [], "groups": []}  # fmt: skip
    present = [i for i in range(len(groups)) if counts[i].sum() > 0]
    keep = [groups[i] for i in present]
    counts = counts[present]
    base["n_fit"] = int(counts.sum())
    positives, negatives = counts[:, 0] + counts[:, 2], counts[:, 1] + counts[:, 3]
    one_class = [
        labels[g] for g, p, n in zip(keep, positives.sum(1), negatives.sum(1), strict=True) if p == 0 or n == 0
    ]
    if not keep or one_class:
        why = "no labelled predictions with a score in scope" if not keep else (
            f"{', '.join(one_class)}: labels of one class only (fairlearn needs both in every group)")  # fmt: skip
        return {**base, "verdict": "insufficient", "verdict_text": f"insufficient: {why}", "reasons": [why]}
    fit = fit_thresholds(keep, positives, negatives, np.arange(1, counts.shape[-1]) / counts.shape[-1], constraint)
    before, after = _before_after(counts, fit)
    result = {**base, "x": fit.x, "y": fit.y, **_summaries(before, after, counts, fit, disparity, settings)}
    result["thresholds"] = [{**rule.to_dict(), "label": labels[rule.group]} for rule in fit.groups]
    result["groups"] = _group_rates(keep, labels, before, after)
    small = [labels[g] for g, p, n in zip(keep, positives.sum(1), negatives.sum(1), strict=True)
             if p < settings.min_positives or n < settings.min_negatives]  # fmt: skip
    change, change_ci = result["disparity_change"], result["disparity_change_ci"]
    acc_change = f"{result['accuracy_change']:+.3f}{_ci_text(result['accuracy_change_ci'])}"
    move = (f"{name} {result['disparity_before']:.3f} → {result['disparity_after']:.3f} (change {change:+.3f}"
            f"{_ci_text(change_ci)}), accuracy {result['accuracy_before']:.3f} → {result['accuracy_after']:.3f} "
            f"(change {acc_change})")  # fmt: skip
    preview = f"preview of post-processing with ThresholdOptimizer ({constraint.replace('_', ' ')})"
    if small:
        verdict = "insufficient"
        text = (f"insufficient: {', '.join(small)} below {settings.min_positives} labelled positives or "
                f"{settings.min_negatives} negatives; {preview}: {move}")  # fmt: skip
    elif change_ci[0] is None:
        verdict = "insufficient"
        text = f"insufficient: no interval for the change (bootstrap resamples = 0); {preview}: {move}"
    elif _sign(change_ci) < 0:
        verdict, text = "reduces", f"reduces: {preview} would cut the {move}"
    else:
        verdict, text = "no_gain", f"no gain: {preview} would not clearly lower the disparity: {move}"
    reasons = [
        f"fitted on {base['n_fit']:,} labelled, scored predictions in {len(keep)} groups (score bins of "
        f"{1 / counts.shape[-1]:g})",
        f"reduces when the {settings.confidence:.0%} bootstrap interval of the disparity's change lies below 0 "
        "(thresholds held fixed, rows resampled within each group)",
    ]
    return {**result, "verdict": verdict, "verdict_text": text, "reasons": reasons}


def _summaries(
    before: np.ndarray, after: np.ndarray, counts: np.ndarray, fit: Any, disparity: str, settings: FairnessSettings
) -> dict[str, Any]:
    """Accuracy and disparity before and after with intervals; the changes with paired intervals."""
    out: dict[str, Any] = {}
    replicated: dict[str, np.ndarray] = {}
    boot = None
    if settings.bootstrap_resamples:
        flat = counts.reshape(counts.shape[0], -1)
        used = flat.sum(axis=0) > 0  # a (cell, bin) empty in every group stays empty in every replicate
        boot = np.zeros((settings.bootstrap_resamples, *flat.shape))
        boot[..., used] = bootstrap_cells(flat[:, used], settings.bootstrap_resamples, settings.seed + 7)
        boot = boot.reshape(settings.bootstrap_resamples, *counts.shape)
        boot_before, boot_after = _before_after(boot, fit)
    for when, cells in (("before", before), ("after", after)):
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"accuracy_{when}"] = finite(rates(cells.sum(axis=0, keepdims=True), "accuracy")[0])
            out[f"disparity_{when}"] = finite(disparities(cells)[disparity])
        out[f"accuracy_{when}_ci"] = out[f"disparity_{when}_ci"] = [None, None]
        if boot is not None:
            replicas = boot_before if when == "before" else boot_after
            with np.errstate(divide="ignore", invalid="ignore"):
                replicated[f"accuracy_{when}"] = rates(replicas.sum(axis=1, keepdims=True), "accuracy")[:, 0]
                replicated[f"disparity_{when}"] = disparities(replicas)[disparity]
            out[f"accuracy_{when}_ci"] = _interval(
                percentile_interval(replicated[f"accuracy_{when}"], settings.confidence)
            )
            out[f"disparity_{when}_ci"] = _interval(
                range_intervals(cells, replicas, "all", settings.confidence)[disparity]
            )
    for what in ("accuracy", "disparity"):
        a, b = out[f"{what}_after"], out[f"{what}_before"]
        out[f"{what}_change"] = None if a is None or b is None else a - b
        ci: tuple[float | None, float | None] = (None, None)
        if boot is not None:
            with np.errstate(invalid="ignore"):
                ci = percentile_interval(
                    replicated[f"{what}_after"] - replicated[f"{what}_before"], settings.confidence
                )
        out[f"{what}_change_ci"] = _interval(ci)
    return out


def _group_rates(groups: Sequence[str], labels: dict[str, str], before: np.ndarray, after: np.ndarray) -> list[dict]:
    """Per group: selection rate, TPR, FPR and accuracy with the model's predictions and after the thresholds."""
    rows = []
    with np.errstate(divide="ignore", invalid="ignore"):
        values = {(m, w): rates(c, m) for m in ("selection_rate", "tpr", "fpr", "accuracy")
                  for w, c in (("before", before), ("after", after))}  # fmt: skip
    for i, group in enumerate(groups):
        row: dict[str, Any] = {"group": group, "label": labels[group], "n": int(before[i].sum())}
        for (metric, when), value in values.items():
            row[f"{metric}_{when}"] = finite(value[i])
        rows.append(row)
    return rows
