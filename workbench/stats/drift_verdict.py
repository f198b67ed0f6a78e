"""One feature's drift result from its two windows' aggregates, and the verdicts across features.

Verdict (issue 3): with a small reference (≤ ``small_reference_rows`` rows) a feature drifted when
its test's p-value, Benjamini–Hochberg-adjusted across features, is below ``p_value``; with a
larger one when PSI ≥ ``psi_threshold`` (at a million rows every p-value is tiny, so the effect
size decides). Independently, a change of the missing share by ≥ ``missing_share_change`` (and
significant by a two-proportion z-test) is drift too. A window with fewer than ``min_rows`` values
gives the feature a warning and no verdict ("insufficient").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from workbench.stats.clean import finite, json_ready
from workbench.stats.divergence import js_distance, psi
from workbench.stats.drift import (
    DriftSettings,
    chi_square,
    exact_ks_and_wasserstein,
    ks_from_grid,
    missing_share_test,
    normalised_wasserstein,
    wasserstein_from_grid,
)
from workbench.stats.multiple import adjust_pvalues


@dataclass(frozen=True)
class NumericSummary:
    """A numeric column in one window: rows, missing, counts on the reference's bins and grid, moments.

    ``bin_counts`` are on the decile edges, ``grid_counts``/``grid_sums`` on the fine grid (both with
    open outer bins); ``values`` holds the sorted non-missing values when they were pulled (exact KS).
    """

    rows: int
    missing: int
    bin_counts: np.ndarray
    grid_counts: np.ndarray
    grid_sums: np.ndarray
    mean: float
    std: float
    values: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Non-missing values."""
        return self.rows - self.missing


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature between the reference and the current window (every statistic side by side)."""

    name: str
    type: str  # numeric | categorical
    test: str  # ks | chi2
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None
    threshold: float
    drift: bool
    decided_by: str  # p_value | psi | missing | insufficient
    psi: float | None
    js_distance: float | None
    wasserstein: float | None
    ks_statistic: float | None
    ks_p_value: float | None
    n_reference: int
    n_current: int
    status: str = "ok"  # ok | insufficient
    value_drift: bool = False
    missing_drift: bool = False
    ks_method: str | None = None
    ks_max_error: float | None = None
    wasserstein_raw: float | None = None
    chi2_dof: int | None = None
    rows_reference: int = 0
    rows_current: int = 0
    missing_share_reference: float | None = None
    missing_share_current: float | None = None
    missing_p_value: float | None = None
    unseen_categories: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    distribution: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, with_distribution: bool = True) -> dict[str, Any]:
        """JSON-ready form (no NaN: None); the chart data under ``distribution`` unless left out."""
        out = asdict(self)
        if not with_distribution:
            out.pop("distribution")
        return json_ready(out)


def _missing(rows_ref: int, missing_ref: int, rows_cur: int, missing_cur: int, settings: DriftSettings) -> dict:
    change, p = missing_share_test(missing_ref, rows_ref, missing_cur, rows_cur)
    drifted = bool(np.isfinite(change) and abs(change) >= settings.missing_share_change and p < settings.p_value)
    return {
        "missing_share_reference": missing_ref / rows_ref if rows_ref else None,
        "missing_share_current": missing_cur / rows_cur if rows_cur else None,
        "missing_p_value": finite(p),
        "missing_drift": drifted,
    }


def _insufficient(n_ref: int, n_cur: int, settings: DriftSettings, name: str) -> list[str]:
    problems = []
    for label, n in (("reference", n_ref), ("current", n_cur)):
        if n == 0:
            problems.append(f"{name}: no values in the {label} window (empty or all missing)")
        elif n < settings.min_rows:
            problems.append(f"{name}: only {n} values in the {label} window (fewer than {settings.min_rows})")
    return problems


def _has_infinite(side: NumericSummary) -> bool:
    """Whether a window's values hold ±inf: the ends of its sorted values, or a non-finite sum of an outer grid bin."""
    if side.values is not None:
        return bool(side.values.size and np.isinf(side.values[[0, -1]]).any())
    sums = np.asarray(side.grid_sums, dtype=float)
    return bool(sums.size and not np.isfinite(sums[[0, -1]]).all())


def numeric_feature(
    name: str,
    ref: NumericSummary,
    cur: NumericSummary,
    grid_edges: np.ndarray,
    settings: DriftSettings,
    distribution: dict[str, Any] | None = None,
) -> FeatureDrift:
    """Every statistic of a numeric feature: KS (exact or grid), PSI and JS on deciles, normalised W₁, missing share."""
    base = {
        "name": name,
        "type": "numeric",
        "test": "ks",
        "n_reference": ref.n,
        "n_current": cur.n,
        "rows_reference": ref.rows,
        "rows_current": cur.rows,
        "distribution": distribution or {},
        **_missing(ref.rows, ref.missing, cur.rows, cur.missing, settings),
    }
    problems = _insufficient(ref.n, cur.n, settings, name)
    if problems:
        return _no_verdict(base, problems, settings)
    warnings = []
    if ref.std == 0:
        warnings.append(f"{name}: constant in the reference window; Wasserstein normalised by 0.001")
    for label, side in (("reference", ref), ("current", cur)):
        if _has_infinite(side):
            warnings.append(f"{name}: infinite values in the {label} window, counted in the outer bins; "
                            "Wasserstein is undefined")  # fmt: skip
    if ref.values is not None and cur.values is not None:
        ks, raw_w = exact_ks_and_wasserstein(ref.values, cur.values)
    else:
        ks = ks_from_grid(ref.grid_counts, cur.grid_counts)
        raw_w = wasserstein_from_grid(grid_edges, ref.grid_counts, cur.grid_counts, ref.grid_sums, cur.grid_sums)
    return FeatureDrift(
        **base,
        statistic=finite(ks.statistic),
        p_value=finite(ks.p_value),
        p_adjusted=None,
        threshold=settings.psi_threshold,
        drift=False,
        decided_by="psi",
        psi=finite(psi(ref.bin_counts, cur.bin_counts)),
        js_distance=finite(js_distance(ref.bin_counts, cur.bin_counts)),
        wasserstein=finite(normalised_wasserstein(raw_w, ref.std)),
        wasserstein_raw=finite(raw_w),
        ks_statistic=finite(ks.statistic),
        ks_p_value=finite(ks.p_value),
        ks_method=ks.method,
        ks_max_error=ks.max_error,
        warnings=warnings,
    )


def categorical_feature(
    name: str,
    categories: list[str],
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    rows: tuple[int, int],
    missing: tuple[int, int],
    settings: DriftSettings,
) -> FeatureDrift:
    """Chi-square on the 2×k table (unseen categories as their own columns, listed), PSI and JS on the same bins."""
    ref = np.asarray(ref_counts, dtype=float)
    cur = np.asarray(cur_counts, dtype=float)
    unseen = [c for c, r, k in zip(categories, ref, cur, strict=True) if r == 0 and k > 0]
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    base = {
        "name": name,
        "type": "categorical",
        "test": "chi2",
        "n_reference": n_ref,
        "n_current": n_cur,
        "rows_reference": rows[0],
        "rows_current": rows[1],
        "unseen_categories": unseen,
        "distribution": {"categories": list(categories), "reference": ref.tolist(), "current": cur.tolist()},
        **_missing(rows[0], missing[0], rows[1], missing[1], settings),
    }
    problems = _insufficient(n_ref, n_cur, settings, name)
    if problems:
        return _no_verdict(base, problems, settings)
    warnings = [f"{name}: one category only in both windows; no chi-square test"] if len(categories) < 2 else []
    test = chi_square(ref, cur)
    return FeatureDrift(
        **base,
        statistic=finite(test.statistic),
        p_value=finite(test.p_value),
        p_adjusted=None,
        threshold=settings.psi_threshold,
        drift=False,
        decided_by="psi",
        psi=finite(psi(ref, cur)),
        js_distance=finite(js_distance(ref, cur)),
        wasserstein=None,
        ks_statistic=None,
        ks_p_value=None,
        chi2_dof=test.dof,
        warnings=warnings,
    )


def _no_verdict(base: dict[str, Any], problems: list[str], settings: DriftSettings) -> FeatureDrift:
    nulls = dict.fromkeys(("statistic", "p_value", "p_adjusted", "psi", "js_distance", "wasserstein"))
    nulls.update(ks_statistic=None, ks_p_value=None)
    missing_drift = base.get("missing_drift", False)
    return FeatureDrift(
        **base,
        **nulls,
        threshold=settings.psi_threshold,
        drift=bool(missing_drift),
        decided_by="missing" if missing_drift else "insufficient",
        status="insufficient",
        warnings=problems,
    )


def decide(
    features: list[FeatureDrift], reference_rows: int, settings: DriftSettings
) -> tuple[list[FeatureDrift], dict[str, Any]]:
    """Apply the verdict rule to every feature; return them and the summary (n_features, n_drifted, share, …).

    p-values are BH-adjusted across the features that have one (``adjust_pvalues(p, "bh")``) whatever
    the rule, so the table always shows them; the rule picks what decides.
    """
    raw = np.array([np.nan if f.p_value is None or not np.isfinite(f.p_value) else f.p_value for f in features])
    adjusted = adjust_pvalues(raw, settings.adjust) if len(raw) else raw  # type: ignore[arg-type]
    small = reference_rows <= settings.small_reference_rows
    decided = []
    for feature, p_adj in zip(features, adjusted, strict=True):
        if feature.status != "ok":
            decided.append(feature)
            continue
        if small:
            value_drift = bool(np.isfinite(p_adj) and p_adj < settings.p_value)
            rule, threshold = "p_value", settings.p_value
        else:
            value_drift = bool(feature.psi is not None and feature.psi >= settings.psi_threshold)
            rule, threshold = "psi", settings.psi_threshold
        drift = value_drift or feature.missing_drift
        decided.append(
            replace(
                feature,
                p_adjusted=float(p_adj) if np.isfinite(p_adj) else None,
                threshold=threshold,
                drift=drift,
                value_drift=value_drift,
                decided_by=rule if value_drift or not feature.missing_drift else "missing",
            )
        )
    evaluated = [f for f in decided if f.status == "ok" or f.drift]
    n_drifted = sum(f.drift for f in evaluated)
    share = n_drifted / len(evaluated) if evaluated else None
    summary = {
        "n_features": len(evaluated),
        "n_drifted": n_drifted,
        "share_drifted": share,
        "dataset_drift": bool(share is not None and share >= settings.dataset_drift_share),
        "rule": "p_value" if small else "psi",
        "n_insufficient": sum(f.status != "ok" for f in decided),
    }
    return decided, summary
