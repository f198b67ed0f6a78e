"""Trigger metrics that call whole analyses (drift, label-free performance) instead of stream counts.

Each returns the per-bucket ``value`` and ``n`` on the rule's calendar, like every metric of
:data:`workbench.stream.triggers.METRICS`. These analyses open their own short read-only connection (and the
drift analysis caches its reference profile in the store with one short write), so
:func:`workbench.stream.triggers.check`
runs them after its own snapshot connection is closed (``Metric.own_connection``).

* ``drift_psi``: the ``min_features``-th largest PSI among the features in the bucket, against the
  ``reference`` days. ``drift_psi >= 0.2`` with ``min_features = 3`` reads "PSI ≥ 0.2 on at least 3
  features": the k-th largest PSI is ≥ t exactly when at least k features have PSI ≥ t. PSI is
  :func:`workbench.drift.over_time.drift_over_time` (reference deciles, 1e-4 empty-bin floor, categories
  as their own bins; Siddiqi 2006), the threshold 0.2 the usual "major shift" level.
* ``fairness_ratio``: per bucket, each group's rate (``rate``, default FPR) divided by the reference
  group's, from :func:`workbench.fairness.series.rate_ratio_series` (one label per trace; a side with
  fewer than 30 labelled negatives gives no ratio). With ``op`` ``>``/``>=`` the value is the largest
  ratio ("any group's FPR ratio above 1.25" ⟺ the largest is above 1.25), with ``<``/``<=`` the
  smallest ("any group's selection-rate ratio below 0.8", the four-fifths rule).
* ``estimated_accuracy``: CBPE (NannyML's confidence-based performance estimation) from
  :func:`workbench.drift.over_time.estimated_performance`, calibrated on the ``reference`` days: expected
  accuracy from the scores alone, so it is known the moment predictions are made, before any label.
  It assumes covariate shift only: it does not see a concept drift (the online accuracy rule does).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.window import Window
from workbench.drift.over_time import drift_over_time, estimated_performance
from workbench.drift.request import OverTimeRequest
from workbench.fairness.series import rate_ratio_series
from workbench.sources.store_queries import filtered_predictions
from workbench.stats.fairness import RATES
from workbench.stream.metric import MetricContext
from workbench.stream.rules import Param, Rule, choice, date_range, number, texts, whole


def names(value: Any) -> tuple[str, ...]:
    """A parser accepting a column name or a non-empty list of them (an intersection), stored as a tuple."""
    if isinstance(value, str) and value.strip():
        return (value.strip(),)
    return texts(value)


def text(value: Any) -> str:
    """A parser accepting a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


LABELS_SETTLED = Param(
    number(0.0, 0.999),
    0.5,
    help="judge a bucket once this share of its labels has arrived, by the measured label delay (0: at once)",
)
REFERENCE = Param(
    date_range,
    required=True,
    help='the reference days, e.g. reference = "2026-01-01/2026-01-31" (both days included)',
)
DRIFT_PARAMS = {
    "reference": REFERENCE,
    "min_features": Param(whole(1), 1, help="how many features must reach the threshold (the k-th largest PSI)"),
    "features": Param(texts, None, help='only these features, e.g. ["amount", "device"]; default: every feature'),
}
PERFORMANCE_PARAMS = {"reference": REFERENCE}
FAIRNESS_PARAMS = {
    "attribute": Param(names, required=True, help='a sensitive column, e.g. "region" (a list: their intersection)'),
    "rate": Param(choice(*RATES), "fpr", help=f"the rate compared between groups: {', '.join(RATES)}"),
    "reference_group": Param(text, "largest", help='the group others are compared with; "largest": most predictions'),
    "labels_settled": LABELS_SETTLED,
}


def reference_window(rule: Rule) -> Window:
    """The rule's ``reference`` days as a Window: from the first day's 00:00 UTC to the day after the last.

    Every model version counts: the reference describes the inputs, which do not depend on the model.
    """
    first, last = rule.param("reference")
    return Window(datetime.combine(first, time(), UTC), datetime.combine(last + timedelta(days=1), time(), UTC))


def _on_calendar(
    ctx: MetricContext, rule: Rule, chunks: pd.Series, value: Any, n: Any, detail: Any = None
) -> pd.DataFrame:
    """Per-chunk value, n (and detail: what drives the value, in words) re-indexed on the rule's calendar
    (a bucket without a chunk: NaN value, n 0, no detail)."""
    starts = pd.to_datetime(pd.Series(chunks), utc=True)
    frame = pd.DataFrame({"value": np.asarray(value, float), "n": np.asarray(n, float)}, index=starts)
    frame["detail"] = list(detail) if detail is not None else None
    full = frame.reindex(ctx.calendar(rule.window))
    return pd.DataFrame(
        {
            "bucket": np.asarray(full.index),
            "value": full["value"].to_numpy(),
            "n": full["n"].fillna(0).to_numpy(),
            "detail": full["detail"].to_numpy(object),
        }
    )


MIN_REFERENCE_ROWS = 100  # fewer predictions in the reference days: no deciles or calibration worth the name


def _reference_problem(ctx: MetricContext, rule: Rule) -> str | None:
    """Why the rule's reference cannot be used (too few predictions in it), or None."""
    key = ("reference rows", rule.param("reference"))
    if key not in ctx.cache:
        with ctx.store.ibis() as con:
            ctx.cache[key] = int(filtered_predictions(con, reference_window(rule)).count().execute())
    rows = ctx.cache[key]
    if rows >= MIN_REFERENCE_ROWS:
        return None
    first, last = rule.param("reference")
    return f"the reference {first}/{last} holds {rows:,} predictions; at least {MIN_REFERENCE_ROWS} are needed"


def _no_values(ctx: MetricContext, rule: Rule, reason: str) -> pd.DataFrame:
    """Every bucket without a value, and the reason the rule's result will show."""
    frame = _on_calendar(ctx, rule, pd.Series([], dtype="datetime64[ns, UTC]"), [], [])
    frame.attrs["reason"] = reason
    return frame


def kth_largest(values: pd.Series, k: int) -> float:
    """The k-th largest of the defined values (NaN when fewer than k are defined)."""
    defined = np.sort(values.dropna().to_numpy(float))[::-1]
    return float(defined[k - 1]) if len(defined) >= k else float("nan")


def drift_psi(ctx: MetricContext, rule: Rule) -> pd.DataFrame:
    """Per bucket: the ``min_features``-th largest PSI of the features against the reference; n = predictions."""
    problem = _reference_problem(ctx, rule)
    if problem:
        return _no_values(ctx, rule, problem)
    features = rule.param("features")
    key = ("drift", rule.param("reference"), rule.window, ctx.window_for(rule), features)
    if key not in ctx.cache:
        request = OverTimeRequest(  # PSI alone: no grid for KS or Wasserstein
            reference_window(rule), rule.window, ctx.window_for(rule), tuple(features or ()), grid=False
        )
        over = drift_over_time(ctx.store, request)
        ctx.cache[key] = over.values
    values = ctx.cache[key]
    if values.empty:
        return _no_values(ctx, rule, "no feature could be compared with the reference")
    k = rule.param("min_features", 1)
    per_chunk = values.groupby("chunk").agg(value=("psi", lambda s: kth_largest(s, k)), n=("rows", "max"))
    top = values.dropna(subset=["psi"]).sort_values("psi", ascending=False).groupby("chunk").head(k)
    detail = top.groupby("chunk").apply(
        lambda part: ", ".join(f"{f} {v:.2f}" for f, v in zip(part["feature"], part["psi"], strict=True)),
        include_groups=False,
    )
    detail = detail.reindex(per_chunk.index)
    return _on_calendar(ctx, rule, per_chunk.index.to_series(), per_chunk["value"], per_chunk["n"], detail)


def fairness_ratio(ctx: MetricContext, rule: Rule) -> pd.DataFrame:
    """Per bucket: the largest (op > or >=) or smallest (op < or <=) ratio of a group's rate to the reference
    group's; n = the smaller of the two labelled denominators behind it."""
    attribute = rule.param("attribute")
    key = ("fairness", attribute, rule.param("rate"), rule.param("reference_group"), rule.window, ctx.window_for(rule))
    if key not in ctx.cache:
        column = attribute[0] if len(attribute) == 1 else list(attribute)
        ctx.cache[key] = rate_ratio_series(
            ctx.store, column, ctx.window_for(rule), rule.window, rule.param("rate"), rule.param("reference_group")
        )
    series = ctx.cache[key]
    usable = series[series["ratio"].notna()]
    if usable.empty:
        return _no_values(ctx, rule, "no bucket with enough labelled predictions in a group and the reference")
    pick = (
        usable.groupby("chunk")["ratio"].idxmax()
        if rule.op in (">", ">=")
        else usable.groupby("chunk")["ratio"].idxmin()
    )
    chosen = usable.loc[pick.to_numpy()]
    n = np.minimum(chosen["denominator"], chosen["reference_denominator"])
    detail = [
        f"{g}: {rule.param('rate')} {v:.3f} vs {r} {rv:.3f}"
        for g, v, r, rv in zip(
            chosen["group"], chosen["value"], chosen["reference_group"], chosen["reference_value"], strict=True
        )
    ]
    return _on_calendar(ctx, rule, chosen["chunk"], chosen["ratio"], n, detail)


def estimated_accuracy(ctx: MetricContext, rule: Rule) -> pd.DataFrame:
    """Per bucket: the CBPE estimate of accuracy (label-free), calibrated on the reference; n = scored predictions."""
    problem = _reference_problem(ctx, rule)
    if problem:
        return _no_values(ctx, rule, problem)
    key = ("cbpe", rule.param("reference"), rule.window, ctx.window_for(rule))
    if key not in ctx.cache:
        ctx.cache[key] = estimated_performance(ctx.store, reference_window(rule), rule.window, ctx.window_for(rule))
    chunks = ctx.cache[key].chunks
    if chunks.empty:
        return _no_values(ctx, rule, "no scored predictions to estimate from")
    return _on_calendar(ctx, rule, chunks["chunk"], chunks["estimated_accuracy"], chunks["rows"])
