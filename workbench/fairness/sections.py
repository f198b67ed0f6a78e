"""Parts of the fairness audit built from the engine's cells frame: groups, feedback rates, calibration,
disparity over time, champion vs challenger. Pandas here only rolls up a few hundred rows of counts;
every statistic comes from ``workbench.stats``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.fairness.queries import group_key
from workbench.stats import dist
from workbench.stats.clean import finite
from workbench.stats.fairness import (
    CELLS,
    FAIRLEARN_DISPARITIES,
    GROUP_JOINER,
    GROUP_METRICS,
    MISSING_GROUP,
    FairnessSettings,
    disparities,
    minimum,
    percentile_interval,
    rate_parts,
    rates,
)
from workbench.stats.fairness_change import gap_change, gap_trend, gap_variance
from workbench.stats.fairness_verdict import Evaluation, evaluate
from workbench.stats.intervals import wilson_interval
from workbench.stats.multiple import adjust_pvalues


def with_group_column(frame: pd.DataFrame, sensitive: Sequence[str]) -> pd.DataFrame:
    """``frame`` with a ``group`` column: the sensitive values joined by " × " (vectorised, once)."""
    keys = [group_key(c) for c in sensitive]
    name = frame[keys[0]].astype(str)
    for key in keys[1:]:
        name = name + GROUP_JOINER + frame[key].astype(str)
    return frame.assign(group=name)


def group_names(frame: pd.DataFrame, extra: Sequence[str] = ()) -> list[str]:
    """The groups in ``frame`` (plus ``extra``), sorted by their values with "(missing)" last."""
    seen = set(frame["group"]) | set(extra)
    order = lambda g: [(part == MISSING_GROUP, part) for part in g.split(GROUP_JOINER)]  # noqa: E731
    return sorted(seen, key=order)


def group_labels(groups: Sequence[str], sensitive: Sequence[str]) -> dict[str, str]:
    """'south' → 'region=south'; '18-25 × south' → 'age_band=18-25 × region=south' (for sentences)."""
    out = {}
    for group in groups:
        parts = group.split(GROUP_JOINER)
        if len(parts) != len(sensitive):
            out[group] = group
        else:
            out[group] = GROUP_JOINER.join(f"{a}={v}" for a, v in zip(sensitive, parts, strict=True))
    return out


def by_group(frame: pd.DataFrame, groups: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    """Sums of ``columns`` per group, in the order of ``groups`` (zeros for a group absent from ``frame``)."""
    if frame.empty:
        return np.zeros((len(groups), len(columns)))
    sums = frame.groupby("group")[list(columns)].sum()
    return sums.reindex(list(groups), fill_value=0.0).to_numpy(dtype=float)


def cell_array(frame: pd.DataFrame, groups: Sequence[str]) -> np.ndarray:
    """The six confusion cells per group, shape (groups, 6)."""
    return by_group(frame, groups, CELLS)


def feedback_rates(sums: np.ndarray, confidence: float) -> list[dict[str, Any]]:
    """Per group: positive-feedback rate (thumbs up / thumbs, Wilson) and mean rating (normal interval).

    ``sums`` columns: thumbs, thumbs_up, ratings, rating_sum, rating_sumsq. The rating interval is
    mean ± z·s/√n with s the sample standard deviation from the sums (n − 1 in the denominator).
    """
    thumbs, up, ratings, total, squares = sums.T
    low, high = wilson_interval(up, thumbs, confidence)
    z = dist.norm_ppf(1 - (1 - confidence) / 2)
    out = []
    for i in range(len(thumbs)):
        mean = total[i] / ratings[i] if ratings[i] > 0 else math.nan
        var = (squares[i] - ratings[i] * mean**2) / (ratings[i] - 1) if ratings[i] > 1 else math.nan
        half = z * math.sqrt(max(var, 0.0) / ratings[i]) if ratings[i] > 1 else math.nan
        out.append(
            {
                "thumbs": int(thumbs[i]),
                "positive_feedback_rate": finite(up[i] / thumbs[i]) if thumbs[i] > 0 else None,
                "positive_feedback_ci": [finite(low[i]), finite(high[i])],
                "ratings": int(ratings[i]),
                "mean_rating": finite(mean),
                "mean_rating_ci": [finite(mean - half), finite(mean + half)],
            }
        )
    return out


def calibration(
    frame: pd.DataFrame, groups: Sequence[str], edges: Sequence[float], confidence: float
) -> dict[str, Any]:
    """Per group and score decile: labelled rows, mean score, observed positive rate (Wilson); per group the
    expected calibration error ECE = Σ_b (n_b/N)·|mean score_b − positive rate_b| and the gap mean score −
    positive rate (calibration in the large). Bins are equal-width tenths of the score (the same for every group).
    """
    if not edges or "decile" not in frame:
        return {"edges": [], "groups": {}}
    scored = frame[frame["decile"] >= 0].assign(positives=lambda f: f["tp"] + f["fn"])
    sums = scored.groupby(["group", "decile"])[["score_n", "score_sum", "positives"]].sum()
    bins = range(len(edges) + 1)
    full = sums.reindex(pd.MultiIndex.from_product([list(groups), list(bins)]), fill_value=0.0)
    out: dict[str, Any] = {"edges": [float(e) for e in edges], "groups": {}}
    for group in groups:
        part = full.loc[group]
        n, s, pos = (part[c].to_numpy(dtype=float) for c in ("score_n", "score_sum", "positives"))
        low, high = wilson_interval(pos, n, confidence)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_score, rate = s / n, pos / n
        total = n.sum()
        ece = np.nansum(n * np.abs(mean_score - rate)) / total if total else None
        out["groups"][group] = {
            "bins": [
                {
                    "bin": b,
                    "n": int(n[b]),
                    "mean_score": finite(mean_score[b]),
                    "positive_rate": finite(rate[b]),
                    "ci": [finite(low[b]), finite(high[b])],
                }
                for b in bins
            ],
            "n": int(total),
            "ece": finite(ece),
            "mean_score": finite(s.sum() / total) if total else None,
            "positive_rate": finite(pos.sum() / total) if total else None,
            "calibration_gap": finite((s.sum() - pos.sum()) / total) if total else None,
        }
    return out


def over_time(
    frame: pd.DataFrame, groups: Sequence[str], reference: str, settings: FairnessSettings
) -> dict[str, Any] | None:
    """Per time chunk: each group's rates (Wilson), its gap and ratio to the reference, fairlearn's disparities;
    and per (group, verdict metric) the trend of the gap with a widening flag (Holm over the trends).
    A chunk's gap is shown only when both groups meet the rate's minimum size in that chunk.
    """
    if "chunk" not in frame or frame["chunk"].isna().all():
        return None
    chunks = sorted(frame["chunk"].dropna().unique())
    ref = list(groups).index(reference)
    # one groupby into a (chunk, group, cell) array instead of a filter per chunk
    per_chunk = (
        frame.groupby(["chunk", "group"])[list(CELLS)]
        .sum()
        .reindex(pd.MultiIndex.from_product([chunks, list(groups)]), fill_value=0.0)
        .to_numpy(dtype=float)
        .reshape(len(chunks), len(groups), len(CELLS))
    )
    population = settings.selection_rate_population
    out: dict[str, Any] = {
        "chunk": settings.time_chunk,
        "chunks": [pd.Timestamp(c).strftime("%Y-%m-%d") for c in chunks],
        "n": {g: per_chunk[:, i, :].sum(axis=1).astype(int).tolist() for i, g in enumerate(groups)},
        "rates": {},
        "ci": {},
        "gap": {},
        "ratio": {},
        "disparities": {},
        "trends": [],
    }
    trend_rows = []
    for metric in GROUP_METRICS:
        x, n = rate_parts(per_chunk, metric, population)
        value = rates(per_chunk, metric, population)
        low, high = wilson_interval(x, n, settings.confidence)
        ok = n >= max(minimum(metric, settings), 1)
        both = ok & ok[:, [ref]]
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.where(both, value - value[:, [ref]], np.nan)
            ratio = np.where(both & (value[:, [ref]] > 0), value / value[:, [ref]], np.nan)
        out["rates"][metric] = {g: [finite(v) for v in value[:, i]] for i, g in enumerate(groups)}
        out["ci"][metric] = {
            g: [[finite(a), finite(b)] for a, b in zip(low[:, i], high[:, i], strict=True)]
            for i, g in enumerate(groups)
        }
        out["gap"][metric] = {g: [finite(v) for v in gap[:, i]] for i, g in enumerate(groups) if i != ref}
        out["ratio"][metric] = {g: [finite(v) for v in ratio[:, i]] for i, g in enumerate(groups) if i != ref}
        if metric not in settings.verdict_metrics:
            continue
        for i, group in enumerate(groups):
            if i == ref:
                continue
            variances = [gap_variance(x[t, i], n[t, i], x[t, ref], n[t, ref]) for t in range(len(chunks))]
            trend = gap_trend(gap[:, i], np.array(variances), settings.alpha)
            if trend is not None:
                trend_rows.append({"group": group, "metric": metric, **trend.__dict__})
    for name, values in _point_disparities(per_chunk, population).items():
        out["disparities"][name] = [finite(v) for v in values]
    adjusted = adjust_pvalues([t["p_value"] for t in trend_rows], settings.adjust)
    for row, p_adj in zip(trend_rows, adjusted, strict=True):
        widening = bool(row["widening"] and p_adj < settings.alpha)
        out["trends"].append({**{k: finite(v) if isinstance(v, float) else v for k, v in row.items()},
                              "p_adjusted": finite(p_adj), "widening": widening})  # fmt: skip
    return out


def _point_disparities(per_chunk: np.ndarray, population: str) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        values = disparities(per_chunk, population)
    return {name: values[name] for name in FAIRLEARN_DISPARITIES}


def pick_versions(spans: pd.DataFrame, champion: str | None, challenger: str | None) -> tuple[str, str] | None:
    """Champion (default: the version serving first) and challenger (default: the one that started last)."""
    versions = list(spans["model_version"])
    if len(versions) < 2 and not (champion and challenger):
        return None
    champion = champion or versions[0]
    challenger = challenger or next((v for v in reversed(versions) if v != champion), None)
    return (champion, challenger) if challenger else None


def overlap_period(spans: pd.DataFrame, pair: tuple[str, str]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The period both versions served (None when they never served at the same time)."""
    both = spans[spans["model_version"].isin(pair)]
    start, end = both["first_ts"].max(), both["last_ts"].min()
    return (start, end) if start <= end else None


def versions_section(
    frame: pd.DataFrame,
    groups: Sequence[str],
    labels: dict[str, str],
    reference: str,
    pair: tuple[str, str],
    settings: FairnessSettings,
) -> dict[str, Any]:
    """Both versions audited side by side on the same period, and the change of every disparity with its test."""
    evaluations: dict[str, Evaluation] = {}
    for k, version in enumerate(pair):
        part = frame[frame["model_version"] == version]
        cells = cell_array(part, groups)
        present = [g for g, row in zip(groups, cells, strict=True) if row.sum() > 0]
        if not present:
            continue
        ref = reference if reference in present else max(present, key=lambda g: cells[list(groups).index(g)].sum())
        keep = [list(groups).index(g) for g in present]
        # each version its own seed: replicates drawn from one stream would be correlated across versions
        # and make the interval of their difference too narrow
        own = dataclasses.replace(settings, seed=settings.seed + 1 + k)
        evaluations[version] = evaluate(present, labels, cells[keep], ref, own)
    out: dict[str, Any] = {"champion": pair[0], "challenger": pair[1], "per_version": {}, "disparities": [], "gaps": []}
    for version, ev in evaluations.items():
        out["per_version"][version] = {
            "verdict": ev.judgement.verdict,
            "verdict_text": ev.judgement.verdict_text,
            "reference_group": ev.reference,
            "n": int(ev.cells.sum()),
            "disparities": ev.disparities,
            "intervals": {k: list(v) for k, v in ev.intervals.items()},
            "statuses": ev.judgement.statuses,
        }
    if len(evaluations) < 2:
        return out
    first, second = evaluations[pair[0]], evaluations[pair[1]]
    for name in first.disparities:
        before, after = first.disparities[name], second.disparities[name]
        change_ci: tuple[float | None, float | None] = (None, None)
        if first.replicates and second.replicates:
            with np.errstate(invalid="ignore"):
                change_ci = percentile_interval(second.replicates[name] - first.replicates[name], settings.confidence)
        significant = change_ci[0] is not None and (change_ci[0] > 0 or change_ci[1] < 0)
        change = None if before is None or after is None else after - before
        out["disparities"].append({"name": name, "champion": before, "challenger": after, "change": change,
                                   "change_ci": list(change_ci), "significant": bool(significant)})  # fmt: skip
    out["gaps"] = _gap_changes(first, second, settings)
    return out


def _gap_changes(first: Evaluation, second: Evaluation, settings: FairnessSettings) -> list[dict[str, Any]]:
    """Each (group, verdict metric) gap to the reference in both versions, z-test of its change (Holm)."""
    rows = []
    population = settings.selection_rate_population
    if first.reference != second.reference:
        return rows
    for metric in settings.verdict_metrics:
        parts = {}
        for ev in (first, second):
            x, n = rate_parts(ev.cells, metric, population)
            parts[id(ev)] = (ev.groups, x, n, ev.groups.index(ev.reference))
        for group in first.groups:
            if group == first.reference or group not in second.groups:
                continue
            stats_ = []
            for ev in (first, second):
                names, x, n, r = parts[id(ev)]
                g = names.index(group)
                floor = max(minimum(metric, settings), 1)
                ok = n[g] >= floor and n[r] >= floor
                d = x[g] / n[g] - x[r] / n[r] if ok else math.nan
                stats_.append((d, gap_variance(x[g], n[g], x[r], n[r]) if ok else math.nan))
            change = gap_change(stats_[0][0], stats_[0][1], stats_[1][0], stats_[1][1])
            rows.append({"group": group, "metric": metric, **change.__dict__})
    adjusted = adjust_pvalues([np.nan if r["p_value"] is None else r["p_value"] for r in rows], settings.adjust)
    for row, p_adj in zip(rows, adjusted, strict=True):
        row["p_adjusted"] = finite(p_adj)
        row["significant"] = bool(np.isfinite(p_adj) and p_adj < settings.alpha)
    return rows
