"""Ibis aggregates for the feedback stream: per time bucket volumes, rates, accuracy, coverage, delay.

Everything is grouped in the engine; a result has one row per bucket (and segment), so a year
of hourly data is a few thousand rows whatever the stream's size.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from workbench.errors import InputError
from workbench.queries import Window, filtered_predictions
from workbench.store import Store

GRANULARITIES = {"hour": "h", "day": "D", "week": "W"}
BUCKET_LENGTH = {"hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1), "week": pd.Timedelta(weeks=1)}
SEGMENT_NONE = "(all)"


def _unit(granularity: str) -> str:
    if granularity not in GRANULARITIES:
        raise InputError(f"granularity must be one of {', '.join(GRANULARITIES)}, not '{granularity}'")
    return GRANULARITIES[granularity]


def _per_trace_feedback(f: Any) -> Any:
    """One row per trace: counts by kind, labels (and positives), thumbs and clicks (and positives)."""
    return f.group_by("trace_id").aggregate(
        n_feedback=f.count(),
        n_explicit=f.trace_id.count(where=f.kind == "explicit"),
        n_implicit=f.trace_id.count(where=f.kind == "implicit"),
        n_automated=f.trace_id.count(where=f.kind == "automated"),
        n_labels=f.label.count(),
        n_label_positive=f.label.cast("int64").sum(),
        n_thumbs=f.trace_id.count(where=f.type == "thumb"),
        n_thumbs_up=f.value.sum(where=f.type == "thumb"),
        n_clicks=f.trace_id.count(where=f.type == "click"),
        n_clicked=f.value.sum(where=f.type == "click"),
    )


def stream_series(
    store: Store, window: Window | None = None, granularity: str = "day", segment: str | None = None
) -> pd.DataFrame:
    """Per prediction bucket (and segment): predictions, feedback by kind, coverage, labels, accuracy inputs.

    Columns: bucket, segment, predictions, with_feedback, with_label, feedback_explicit/implicit/automated,
    labels, correct (labelled pairs where prediction == label), thumbs, thumbs_up, clicks, clicked.
    Feedback is counted on its prediction's bucket, so recent buckets fill in as labels arrive.
    """
    unit = _unit(granularity)
    with store.ibis() as con:
        p = filtered_predictions(con, window)
        if segment is not None and segment not in p.columns:
            raise InputError(f"cannot segment by '{segment}': not a column of predictions")
        per_trace = _per_trace_feedback(con.table("feedback"))
        j = p.left_join(per_trace, "trace_id")
        labels = j.n_labels.fill_null(0)
        positives = j.n_label_positive.fill_null(0)
        correct = (j.prediction == 1).ifelse(positives, labels - positives)
        seg = j[segment].cast("string").fill_null("(missing)") if segment else j.trace_id.isnull().ifelse("", "")
        grouped = j.group_by(bucket=j.ts.truncate(unit), segment=seg).aggregate(
            predictions=j.count(),
            with_feedback=j.trace_id.count(where=j.n_feedback.fill_null(0) > 0),
            with_label=j.trace_id.count(where=labels > 0),
            feedback_explicit=j.n_explicit.fill_null(0).sum(),
            feedback_implicit=j.n_implicit.fill_null(0).sum(),
            feedback_automated=j.n_automated.fill_null(0).sum(),
            labels=labels.sum(),
            correct=correct.sum(),
            thumbs=j.n_thumbs.fill_null(0).sum(),
            thumbs_up=j.n_thumbs_up.fill_null(0).sum(),
            clicks=j.n_clicks.fill_null(0).sum(),
            clicked=j.n_clicked.fill_null(0).sum(),
        )
        frame = grouped.order_by(["bucket", "segment"]).execute()
    if segment is None:
        frame["segment"] = SEGMENT_NONE
    numeric = [c for c in frame.columns if c not in ("bucket", "segment")]
    frame[numeric] = frame[numeric].fillna(0).astype("int64")
    return frame


def feedback_arrivals(store: Store, window: Window | None = None, granularity: str = "day") -> pd.DataFrame:
    """Feedback rows by arrival bucket (feedback ts), kind and type; the window's versions filter via the join."""
    unit = _unit(granularity)
    with store.ibis() as con:
        f = con.table("feedback")
        if window is not None and window.model_versions:
            p = filtered_predictions(con, Window(model_versions=window.model_versions)).select("trace_id")
            f = f.semi_join(p, "trace_id")
        if window is not None and window.start is not None:
            f = f.filter(f.ts >= window.start)
        if window is not None and window.end is not None:
            f = f.filter(f.ts < window.end)
        frame = (
            f.group_by(bucket=f.ts.truncate(unit), kind=f.kind, type=f.type)
            .aggregate(rows=f.count())
            .order_by(["bucket", "kind", "type"])
            .execute()
        )
    return frame


def label_delays(store: Store, window: Window | None = None, bin_hours: float = 6.0) -> pd.DataFrame:
    """Histogram of label delay (labelled feedback ts − prediction ts) in bins of ``bin_hours``.

    Columns: delay_hours (bin start), labels; negative delays (clock skew) fall in the first bin.
    """
    with store.ibis() as con:
        p = filtered_predictions(con, window).select("trace_id", p_ts="ts")
        f = con.table("feedback")
        f = f.filter(f.label.notnull()).select("trace_id", "ts")
        j = f.inner_join(p, "trace_id")
        seconds = j.ts.epoch_seconds() - j.p_ts.epoch_seconds()
        bin_index = (seconds / (3600.0 * bin_hours)).floor().clip(lower=0)
        frame = j.group_by(bin_index=bin_index).aggregate(labels=j.count()).order_by("bin_index").execute()
    frame["delay_hours"] = frame.pop("bin_index").astype(float) * bin_hours
    return frame[["delay_hours", "labels"]]


def signal_quality(store: Store, window: Window | None = None, granularity: str = "day") -> dict[str, Any]:
    """Quarantine by reason over ingest time; traces with conflicting labels, repeated feedback; orphans."""
    unit = _unit(granularity)
    with store.ibis() as con:
        q = con.table("quarantine")
        quarantine = (
            q.group_by(bucket=q.quarantined_at.truncate(unit), reason=q.reason)
            .aggregate(rows=q.count())
            .order_by(["bucket", "reason"])
            .execute()
        )
        p = filtered_predictions(con, window).select("trace_id")
        f = con.table("feedback")
        scoped = f.semi_join(p, "trace_id")
        labelled = scoped.filter(scoped.label.notnull())
        conflicting = (
            labelled.group_by("trace_id")
            .aggregate(lo=labelled.label.min(), hi=labelled.label.max())
            .filter(lambda t: t.lo != t.hi)
            .count()
            .execute()
        )
        repeated = (
            scoped.group_by(["trace_id", "type"])
            .aggregate(n=scoped.count())
            .filter(lambda t: t.n > 1)
            .count()
            .execute()
        )
        orphans = f.anti_join(con.table("predictions").select("trace_id"), "trace_id").count().execute()
    return {
        "quarantine": quarantine,
        "conflicting_label_traces": int(conflicting),
        "repeated_feedback_traces": int(repeated),
        "orphan_feedback": int(orphans),
    }
