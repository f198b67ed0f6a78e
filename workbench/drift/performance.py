"""Performance over time: realised accuracy and ROC AUC where labels arrived, and the label-free CBPE estimate.

The engine returns counts per (chunk, score bin, prediction) with label counts from the chosen
feedback kinds (:func:`workbench.sources.scores.binned_scores`, shared with model quality);
:mod:`workbench.stats.performance` turns them into numbers. The calibration is chosen on the reference
by :func:`workbench.sources.scores.choose_calibration` (isotonic when it lowers the out-of-sample ECE,
NannyML's rule).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.window import Window, describe_window
from workbench.drift.engine import load_settings
from workbench.sources.chunks import chunk_key, parse_chunk
from workbench.sources.scores import AUC_BINS, binned_scores_many, choose_calibration
from workbench.sources.store import Store
from workbench.sources.store_queries import filtered_predictions
from workbench.sources.trace_feedback import labels_per_trace
from workbench.stats.clean import json_ready
from workbench.stats.drift import DriftSettings
from workbench.stats.performance import binned_auc, expected_accuracy, raw_expected_accuracy

ASSUMPTION = (
    "The estimate assumes covariate shift only: the probability of the label given the score is the "
    "reference's. Under concept drift (the relation between features and label changes) it stays where "
    "it was while the realised accuracy falls, which is itself the signal."
)


@dataclass(frozen=True)
class PerformanceOverTime:
    """Per chunk: rows, labels, realised accuracy/AUC, CBPE estimated accuracy/AUC with its band, in-band flag."""

    chunk: str
    chunks: pd.DataFrame
    calibration: dict[str, Any]
    reference: dict[str, Any]
    assumption: str = ASSUMPTION
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: one record per chunk."""
        records = self.chunks.assign(chunk=self.chunks["chunk"].astype(str)).to_dict(orient="records")
        return json_ready({**asdict(self), "chunks": records})


def _chunk_row(part: pd.DataFrame, mapping: np.ndarray | None, bins: int, sigmas: float, min_rows: int) -> dict:
    """One chunk's realised and estimated metrics from its counts per (score bin, prediction).

    Plain arrays and ``np.bincount`` per score bin: the pandas group-bys it replaced cost ~10 ms a chunk (0.9 s of
    the 20M-row check's 90 daily chunks), the same sums.
    """
    b = part["bin"].to_numpy(np.int64)
    pred = part["prediction"].to_numpy(np.int64)
    n_, s_, s2_, lab_, pos_, correct_ = (part[c].to_numpy(dtype=float)
                                         for c in ("n", "s", "s2", "labelled", "positives", "correct"))  # fmt: skip
    n, labelled = n_.sum(), lab_.sum()
    inside = (b >= 0) & (b < AUC_BINS)  # the bins of the AUC (a score of 1.0 joined the top one in the engine)

    def per_bin(values: np.ndarray, where: np.ndarray, size: int = AUC_BINS) -> np.ndarray:
        return np.bincount(b[where] * size // AUC_BINS, weights=values[where], minlength=size)[:size]

    if mapping is None:
        one, zero = pred == 1, pred == 0
        accuracy, std = raw_expected_accuracy(n_[one].sum(), s_[one].sum(), n_[zero].sum(), s_[zero].sum(),
                                              (s_ - s2_).sum())  # fmt: skip
        per_n, per_s = per_bin(n_, inside), per_bin(s_, inside)
        c = np.where(per_n > 0, per_s / np.where(per_n > 0, per_n, 1), 0)
        est_auc, _ = binned_auc(per_n * c, per_n * (1 - c))
    else:
        n1 = per_bin(n_, inside & (pred == 1), bins)
        n0 = per_bin(n_, inside & (pred == 0), bins)
        est = expected_accuracy(n1, n0, mapping)
        accuracy, std, est_auc = est.accuracy, est.std, est.auc
    lab_std = _labelled_std(b, n_, s_, lab_, mapping, bins)
    positives = per_bin(pos_, inside)
    auc, auc_error = binned_auc(positives, per_bin(lab_, inside) - positives)
    realised = correct_.sum() / labelled if labelled >= min_rows else float("nan")
    half = sigmas * (lab_std if labelled >= min_rows else std)
    return {
        "rows": int(n),
        "labelled": int(labelled),
        "realised_accuracy": realised,
        "realised_auc": auc if labelled >= min_rows else float("nan"),
        "auc_max_error": auc_error if labelled >= min_rows else float("nan"),
        "estimated_accuracy": accuracy,
        "estimated_std": std,
        "estimated_auc": est_auc,
        "band_lower": accuracy - half,
        "band_upper": accuracy + half,
        "within_band": bool(abs(realised - accuracy) <= half) if np.isfinite(realised) else None,
    }


def _labelled_std(
    b: np.ndarray, n: np.ndarray, s: np.ndarray, lab: np.ndarray, mapping: np.ndarray | None, bins: int
) -> float:
    """Sampling std of accuracy over the chunk's labelled predictions: √(Σ c(1 − c))/n_labelled.

    The realised accuracy is measured on those rows only, so this is how far it can fall from the
    estimate by chance; without calibration c is the bin's mean score. Arrays per (score bin ``b``, prediction).
    """
    if lab.sum() == 0:
        return float("nan")
    if mapping is None:
        c = np.where(n > 0, s / np.where(n > 0, n, 1), 0)
    else:
        c = mapping[(b * bins // AUC_BINS).astype(int)]
    return float(np.sqrt(np.sum(lab * c * (1 - c))) / lab.sum())


def estimated_performance(
    store: Store,
    reference: Window | None,
    chunk: str | int = "week",
    window: Window | None = None,
    settings: DriftSettings | None = None,
) -> PerformanceOverTime:
    """Per chunk of ``window``: realised accuracy and ROC AUC (labelled predictions) and the CBPE estimate.

    The estimate's band is ± ``band_sigmas`` sampling standard errors of the accuracy over the chunk's
    labelled predictions (over all its predictions when fewer than ``min_rows`` are labelled):
    where the realised accuracy should fall if only covariate shift happened.
    """
    settings = settings or load_settings()
    chunk = parse_chunk(chunk)
    with store.ibis() as con:
        labels, note = labels_per_trace(con, settings.performance_label_kinds)
        keyed = chunk_key(filtered_predictions(con, window), chunk)
        parts = [(filtered_predictions(con, reference), None, True), (keyed, lambda t: t.chunk, False)]
        reference_bins, frame = binned_scores_many(labels, parts)
        starts = keyed.group_by("chunk").aggregate(start=keyed.ts.min()).execute() if isinstance(chunk, int) else None
    mapping, calibration = choose_calibration(reference_bins, settings.score_bins)
    rows = []
    for group, part in frame.groupby("group", sort=True):
        row = _chunk_row(part, mapping, settings.score_bins, settings.band_sigmas, settings.min_rows)
        rows.append({"chunk": group, **row})
    chunks = pd.DataFrame(rows)
    if starts is not None and not chunks.empty:
        chunks["chunk"] = chunks["chunk"].map(dict(zip(starts["chunk"], starts["start"], strict=True)))
    if not chunks.empty:
        chunks["chunk"] = pd.to_datetime(chunks["chunk"], utc=True)  # chunk starts in UTC
    reference_info = {"label": describe_window(reference), "rows": int(reference_bins["n"].sum())}
    warnings = (note,) if note else ()
    return PerformanceOverTime(str(chunk), chunks, calibration, reference_info, warnings=warnings)
