"""Drift and performance over time: every metric per chunk (day, week or N rows) against the reference.

Public entry points for the page, the CLI, the notebook and the retraining triggers, all taking
``(store, reference: Window, chunk=..., window: Window | None)``:

- :func:`drift_over_time` → :class:`DriftOverTime`: per chunk and feature PSI, JS, normalised
  Wasserstein, KS (grid), chi-square p, missing share; the threshold (fixed, or learned from the
  reference's own chunks as mean ± 3σ like NannyML) and the first chunk where each feature crossed it.
- :func:`estimated_performance` → :class:`PerformanceOverTime`: realised accuracy and ROC AUC where
  labels arrived, and the label-free CBPE estimate with its sampling band (covariate shift only); it lives in
  :mod:`workbench.drift.performance` and is re-exported here, as are the chunks of :mod:`workbench.sources.chunks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.errors import InputError
from workbench.core.window import describe_window
from workbench.drift import queries as q
from workbench.drift.engine import load_settings
from workbench.drift.performance import PerformanceOverTime, estimated_performance
from workbench.drift.request import OverTimeRequest
from workbench.drift.store import reference_profile, store_features
from workbench.sources.chunks import CHUNK_UNITS, chunk_key, parse_chunk
from workbench.sources.store import Store
from workbench.sources.store_queries import filtered_predictions
from workbench.sources.trace_feedback import labels_per_trace
from workbench.stats.clean import json_ready
from workbench.stats.divergence import js_distance, psi
from workbench.stats.drift import (
    DriftSettings,
    chi_square,
    ks_from_grid,
    learned_threshold,
    normalised_wasserstein,
    wasserstein_from_grid,
)

__all__ = [  # the chunks and the performance over time are re-exported: callers read them from here
    "CHUNK_UNITS", "DriftOverTime", "PerformanceOverTime", "chunk_key", "drift_over_time", "estimated_performance",
    "labels_per_trace", "parse_chunk",
]  # fmt: skip

# --- drift over time ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftOverTime:
    """Per chunk and feature drift metrics against the reference, thresholds and first crossings."""

    chunk: str
    metric: str  # the metric the thresholds and crossings are on (psi)
    values: pd.DataFrame  # per chunk × feature: rows, n, missing_share, psi, js, wasserstein, ks, p, threshold, drift
    thresholds: dict[str, dict[str, Any]]
    first_crossing: dict[str, str | None]
    reference: dict[str, Any]
    warnings: tuple[str, ...] = ()

    def matrix(self, metric: str | None = None) -> pd.DataFrame:
        """Feature × chunk table of one metric (for the heatmap)."""
        return self.values.pivot(index="feature", columns="chunk", values=metric or self.metric)

    def drifted_per_chunk(self, threshold: float | None = None) -> pd.Series:
        """Number of features at or above ``threshold`` (default: each feature's own threshold) per chunk."""
        v = self.values
        hit = v[self.metric] >= threshold if threshold is not None else v["drift"]
        return hit.groupby(v["chunk"]).sum().astype(int)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: one record per chunk and feature."""
        records = self.values.assign(chunk=self.values["chunk"].astype(str)).to_dict(orient="records")
        return json_ready({"chunk": self.chunk, "metric": self.metric, "values": records, "thresholds": self.thresholds,
                      "first_crossing": self.first_crossing, "reference": self.reference,
                      "warnings": list(self.warnings)})  # fmt: skip


def _coarse(entry: dict[str, Any], bins: int) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """The over-time grid (same span, ``bins`` bins) and the reference's counts/sums on it, from the fine grid."""
    fine = int(entry["grid"]["bins"])
    spec = {"lo": entry["grid"]["lo"], "width": entry["grid"]["width"] * fine / bins, "bins": bins}
    index = np.asarray(entry["grid_index"], dtype=int)
    inner = (index >= 1) & (index <= fine)
    coarse = np.where(inner, (index - 1) * bins // fine + 1, np.where(index == 0, 0, bins + 1))
    counts = np.bincount(coarse, weights=entry["grid_counts"], minlength=bins + 2)
    sums = np.bincount(coarse, weights=entry["grid_sums"], minlength=bins + 2)
    return spec, counts, sums


def _numeric_rows(
    name: str, entry: dict[str, Any], frame: pd.DataFrame, settings: DriftSettings, with_grid: bool = True
) -> list[dict]:
    spec, ref_grid, ref_sums = _coarse(entry, settings.over_time_grid_bins)
    edges = np.asarray(entry["edges"], dtype=float)
    grid = q.grid_edges(spec)
    ref_bins = np.asarray(entry["bin_counts"], dtype=float)
    out = []
    for chunk, part in frame.groupby("group", sort=True):
        counts = q.split_counts(part, len(edges), int(spec["bins"]))
        n = int(counts["grid_counts"].sum())
        row = {"chunk": chunk, "feature": name, "type": "numeric", "n": n}
        if n >= settings.min_rows and not with_grid:  # the decile bins' metrics only (grid_counts holds the total)
            row.update(psi=psi(ref_bins, counts["bin_counts"]), js_distance=js_distance(ref_bins, counts["bin_counts"]))
        elif n >= settings.min_rows:
            ks = ks_from_grid(ref_grid, counts["grid_counts"])
            raw_w = wasserstein_from_grid(grid, ref_grid, counts["grid_counts"], ref_sums, counts["grid_sums"])
            row.update(
                psi=psi(ref_bins, counts["bin_counts"]),
                js_distance=js_distance(ref_bins, counts["bin_counts"]),
                wasserstein=normalised_wasserstein(raw_w, entry["std"] or 0.0),
                ks_statistic=ks.statistic,
                p_value=ks.p_value,
            )
        out.append(row)
    return out


def _categorical_rows(name: str, ref_counts: dict[str, int], frame: pd.DataFrame, settings: DriftSettings) -> list:
    out = []
    for chunk, part in frame.groupby("group", sort=True):
        cur = dict(zip(part["value"].astype(str), part["n"].astype(int), strict=True))
        cats = sorted(set(ref_counts) | set(cur))
        ref = np.array([ref_counts.get(c, 0) for c in cats], dtype=float)
        now = np.array([cur.get(c, 0) for c in cats], dtype=float)
        row = {"chunk": chunk, "feature": name, "type": "categorical", "n": int(now.sum())}
        if now.sum() >= settings.min_rows:
            test = chi_square(ref, now)
            row.update(psi=psi(ref, now), js_distance=js_distance(ref, now), p_value=test.p_value)
        out.append(row)
    return out


def _chunk_values(
    table: Any, profile: dict[str, Any], numeric: list[str], categorical: list[str], chunk: str | int, settings,
    grid: bool = True,
) -> pd.DataFrame:  # fmt: skip
    """Long table of every metric per chunk and feature of ``table`` against the reference ``profile`` (without
    ``grid``: no KS or Wasserstein, see :class:`OverTimeRequest`)."""
    keyed = chunk_key(table, chunk)
    by = lambda t: t.chunk  # noqa: E731
    rows: list[dict] = []
    bins = {}
    for f in numeric:
        entry = profile["numeric"][f]
        bins[f] = (np.asarray(entry["edges"], dtype=float), _coarse(entry, settings.over_time_grid_bins)[0])
    for f, frame in q.numeric_counts_by(keyed, bins, by, grid).items():
        rows += _numeric_rows(f, profile["numeric"][f], frame, settings, grid)
    for f, frame in q.categorical_counts_by(keyed, categorical, by).items():
        rows += _categorical_rows(f, profile["categorical"][f], frame, settings)
    sizes = keyed.group_by("chunk").aggregate(
        rows=keyed.count(), start=keyed.ts.min(), **{f"n__{f}": keyed[f].count() for f in numeric + categorical}
    )
    sizes = sizes.execute()
    columns = ["chunk", "feature", "type", "n", "psi", "js_distance", "wasserstein", "ks_statistic", "p_value"]
    values = pd.DataFrame(rows, columns=columns)
    long = sizes.melt(id_vars=["chunk", "rows", "start"], var_name="feature", value_name="non_missing")
    long["feature"] = long["feature"].str.removeprefix("n__")
    values = long.merge(values, on=["chunk", "feature"], how="left")
    values["missing_share"] = 1 - values["non_missing"] / values["rows"]
    if isinstance(chunk, int):  # row blocks are labelled by their first timestamp
        values["chunk"] = values["start"]
    values["chunk"] = pd.to_datetime(values["chunk"], utc=True)  # chunk starts in UTC
    values["type"] = values["feature"].map(
        {**dict.fromkeys(numeric, "numeric"), **dict.fromkeys(categorical, "categorical")}
    )
    values["n"] = values["non_missing"].astype(int)
    return values.drop(columns=["non_missing", "start"]).sort_values(["chunk", "feature"]).reset_index(drop=True)


def drift_over_time(
    store: Store, request: OverTimeRequest, settings: DriftSettings | None = None, *, progress: Any = None
) -> DriftOverTime:
    """Every drift metric per chunk of ``request.window`` (default: all data) against ``request.reference``.

    A feature drifts in a chunk when its PSI ≥ the threshold: ``psi_threshold``, or with
    ``learn_thresholds`` the upper end of mean ± ``learned_sigmas``·σ of its PSI over the reference's
    own chunks (NannyML's convention). ``first_crossing`` is the first chunk where that happened.
    """
    settings = settings or load_settings()
    reference, window, chunk = request.reference, request.window, parse_chunk(request.chunk)
    features = list(request.features) or None
    with store.ibis() as con:
        numeric, categorical = store_features(con, features)
        lookup = reference_profile(con, reference, numeric, categorical, settings, progress)
        profile = lookup.profile
        if not profile["sizes"]["rows"]:  # every chunk would be compared with nothing
            raise InputError(f"the reference window ({describe_window(reference)}) has no predictions")
        values = _chunk_values(
            filtered_predictions(con, window), profile, numeric, categorical, chunk, settings, request.grid
        )
        learned = None
        if request.learn_thresholds:
            learned = _chunk_values(
                filtered_predictions(con, reference), profile, numeric, categorical, chunk, settings, request.grid
            )
    lookup.save(store)
    thresholds = {}
    for f in numeric + categorical:
        entry = {"metric": "psi", "upper": settings.psi_threshold, "lower": None, "learned": False}
        if learned is not None:
            lower, upper = learned_threshold(learned.loc[learned["feature"] == f, "psi"], settings.learned_sigmas)
            if np.isfinite(upper):
                entry = {"metric": "psi", "upper": upper, "lower": lower, "learned": True}
        thresholds[f] = entry
    values["threshold"] = values["feature"].map({f: t["upper"] for f, t in thresholds.items()})
    values["drift"] = (values["psi"] >= values["threshold"]).fillna(False).astype(bool)
    first = {}
    for f in numeric + categorical:
        hits = values.loc[(values["feature"] == f) & values["drift"], "chunk"]
        first[f] = None if hits.empty else pd.Timestamp(hits.min()).isoformat()
    ref = {"label": describe_window(reference), "rows": profile["sizes"]["rows"]}
    return DriftOverTime(str(chunk), "psi", values, thresholds, first, ref)
