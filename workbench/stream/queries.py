"""Ibis aggregates for the feedback stream: per time bucket volumes, rates, accuracy, coverage, delay.

Everything is grouped in the engine; a result has one row per bucket (and segment), so a year
of hourly data is a few thousand rows whatever the stream's size. Feedback is counted on the
bucket of the *prediction* it refers to (a cohort view: "how did the predictions made that day
fare"), except in :func:`feedback_arrivals`, which counts it when it arrived. Each function takes
an Ibis backend, so a caller can run several of them over one read-only connection: one snapshot
of a store that another process may be appending to (see :mod:`workbench.stream.snapshot`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import pandas as pd

from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.sources import trace_feedback
from workbench.sources.chunks import utc_bucket
from workbench.sources.experiment import hidden
from workbench.sources.store import Store, stored_roles
from workbench.sources.store_queries import filtered_predictions
from workbench.stream.buckets import BUCKET_LENGTH, GRANULARITIES, MISSING, SEGMENT_NONE

SERIES_COUNTS = (
    "predictions",
    "with_feedback",
    "with_label",
    "feedback_explicit",
    "feedback_implicit",
    "feedback_automated",
    "labels",
    "correct",
    "thumbs",
    "thumbs_up",
    "clicks",
    "clicked",
)


def unit(granularity: str) -> str:
    """The engine's truncation unit for ``granularity`` (hour, day, week: ISO weeks start on Monday)."""
    if granularity not in GRANULARITIES:
        raise InputError(f"granularity must be one of {', '.join(GRANULARITIES)}, not '{granularity}'")
    return GRANULARITIES[granularity]


def segment_columns(con: Any) -> list[str]:
    """Columns the stream can be split by: model_version, arm, then sensitive and categorical columns."""
    roles = stored_roles(con.con).predictions
    present = set(con.table("predictions").columns)
    ordered = ["model_version", "arm", *roles.sensitive, *(roles.categorical or [])]
    return [c for i, c in enumerate(ordered) if c in present and c not in ordered[:i]]


def split_options(sensitive: Sequence[str], categorical: Sequence[str]) -> dict[str, str | None]:
    """What the page offers to split the stream by: label → column (None: no split)."""
    options: dict[str, str | None] = {"nothing": None, "model version": "model_version", "arm": "arm"}
    for column in [*sensitive, *categorical]:
        options.setdefault(column, column)
    return options


def label_filter(f: Any, label_types: Sequence[str] | None) -> Any:
    """Feedback rows that count as labels: a label, from one of ``label_types`` when given."""
    labelled = f.label.notnull()
    return labelled & f.type.isin(list(label_types)) if label_types else labelled


def _per_trace_feedback(f: Any, label_types: Sequence[str] | None) -> Any:
    """One row per trace: counts by kind, labels (and positives), thumbs and clicks (and positives)."""
    is_label = label_filter(f, label_types)
    return f.group_by("trace_id").aggregate(
        n_feedback=f.count(),
        n_explicit=f.trace_id.count(where=f.kind == "explicit"),
        n_implicit=f.trace_id.count(where=f.kind == "implicit"),
        n_automated=f.trace_id.count(where=f.kind == "automated"),
        n_labels=f.trace_id.count(where=is_label),
        n_label_positive=f.label.cast("int64").sum(where=is_label),
        n_thumbs=f.trace_id.count(where=f.type == "thumb"),
        n_thumbs_up=f.value.sum(where=f.type == "thumb"),
        n_clicks=f.trace_id.count(where=f.type == "click"),
        n_clicked=f.value.sum(where=f.type == "click"),
    )


def _segment(con: Any, table: Any, segment: str | None, column: str | None = None) -> Any:
    """The segment of ``table``'s rows: ``segment``'s values as text (its ``column`` when renamed), or one literal."""
    if segment is None:
        return ibis.literal(SEGMENT_NONE)
    if segment not in segment_columns(con):
        allowed = ", ".join(segment_columns(con))
        raise InputError(f"cannot split the stream by '{segment}': choose one of {allowed}")
    return table[column or segment].cast("string").fill_null(MISSING)


PER_TRACE_COUNTS = ("with_feedback", "with_label")  # predictions with any: the feedback grouped by trace first


def series_from(
    con: Any,
    window: Window | None = None,
    granularity: str = "day",
    segment: str | None = None,
    label_types: Sequence[str] | None = None,
    counts: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per prediction bucket (and segment): predictions, feedback by kind, coverage, labels, accuracy inputs.

    Columns: bucket (UTC start), segment, then the counts of :data:`SERIES_COUNTS`: predictions,
    with_feedback / with_label (predictions with any feedback / with a label), feedback rows by kind,
    labels (labelled feedback rows, from ``label_types`` when given), correct (those whose label equals
    the prediction), thumbs / thumbs_up and clicks / clicked (feedback rows of type thumb and click, and
    how many had value 1). Buckets without predictions are absent (see :func:`on_calendar`).

    ``counts`` (a trigger rule's few): only those and ``predictions``. Without the two of
    :data:`PER_TRACE_COUNTS` they are sums over feedback rows, so only the rows they count are joined to the
    predictions and nothing is grouped by trace (:func:`_row_sums`: the same numbers). On a store whose kept copies
    are current the two are counted without grouping either (every count from :func:`_row_sums`): at 20M
    predictions grouping 21.7M feedback rows by trace and joining them took most of the stream page's series.
    """
    trunc = unit(granularity)
    if counts is not None:
        unknown = sorted(set(counts) - set(SERIES_COUNTS))
        if unknown:
            raise ValueError(f"unknown stream counts: {', '.join(unknown)}")
    wanted = tuple(SERIES_COUNTS[1:] if counts is None else counts)
    if not set(wanted) & set(PER_TRACE_COUNTS) or trace_feedback.copies_current(con):
        return _typed(_row_sums(con, window, trunc, segment, label_types, wanted))
    p = filtered_predictions(con, window)
    per_trace = _per_trace_feedback(con.table("feedback"), label_types)
    j = p.left_join(per_trace, "trace_id")
    labels = j.n_labels.fill_null(0)
    positives = j.n_label_positive.fill_null(0)
    correct = (j.prediction == 1).ifelse(positives, labels - positives)
    grouped = j.group_by(bucket=utc_bucket(j.ts, trunc), segment=_segment(con, j, segment)).aggregate(
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
    frame = _typed(grouped.order_by(["bucket", "segment"]).execute())
    if counts is not None:
        frame = frame[["bucket", "segment", *dict.fromkeys(("predictions", *counts))]]
    return frame


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """UTC bucket starts and whole counts (a bucket without a count's rows: 0)."""
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    present = [c for c in SERIES_COUNTS if c in frame.columns]
    frame[present] = frame[present].fillna(0).astype("int64")
    return frame


def _row_sums(
    con: Any, window: Window | None, trunc: str, segment: str | None, label_types: Sequence[str] | None,
    counts: Sequence[str],
) -> pd.DataFrame:  # fmt: skip
    """:func:`series_from`'s ``predictions`` and ``counts`` as sums over the feedback rows they count, joined to
    their prediction's bucket: at 20M predictions and 21.7M feedback rows, the labels of one type join 6.7M rows
    instead of grouping 21.7M by trace and joining 14M groups; on a store whose feedback rows carry their
    prediction's columns, they are not joined at all (:func:`on_predictions`). The counts of predictions are not
    sums of rows: ``with_feedback`` reads the predictions' kept number of feedback rows (so only with current
    copies), ``with_label`` their kept number of labels of every type, or with ``label_types`` the distinct traces
    of the bucket's label rows (a distinct count among the other sums took 2.8 s more at 20M predictions)."""
    p = filtered_predictions(con, window)
    # the predictions' kept numbers of feedback rows and (every label type) of labels: a count per prediction
    kept = {"with_feedback": "n_feedback", **({} if label_types else {"with_label": "n_labels"})}
    kept = {name: column for name, column in kept.items() if name in counts}
    flags = {name: p[hidden(column)].fill_null(0) > 0 for name, column in kept.items()}
    keyed = p.select(bucket=utc_bucket(p.ts, trunc), segment=_segment(con, p, segment), **flags)
    per_prediction = {"predictions": keyed.count(), **{name: keyed.count(where=keyed[name]) for name in flags}}
    frame = keyed.group_by(["bucket", "segment"]).aggregate(**per_prediction)
    f = con.table("feedback")
    is_label = label_filter(f, label_types)
    f = f.mutate(is_label=is_label)
    kinds = {"feedback_explicit": "explicit", "feedback_implicit": "implicit", "feedback_automated": "automated"}
    rows = {
        **{name: f.kind == kind for name, kind in kinds.items()},
        "labels": f.is_label, "correct": f.is_label, "with_label": f.is_label,
        "thumbs": f.type == "thumb", "thumbs_up": f.type == "thumb",
        "clicks": f.type == "click", "clicked": f.type == "click",
    }  # fmt: skip
    wanted = [c for c in dict.fromkeys(counts) if c != "predictions" and c not in kept]
    if not wanted:
        frame = frame.select("bucket", "segment", *dict.fromkeys(("predictions", *counts)))
        return frame.order_by(["bucket", "segment"]).execute()
    keep = rows[wanted[0]]
    for c in wanted[1:]:
        keep = keep | rows[c]
    columns = ("ts", "prediction", *([segment] if segment else []))
    j = trace_feedback.on_predictions(con, f.filter(keep), window, columns)
    j = j.mutate(bucket=utc_bucket(j.p_ts, trunc), segment=_segment(con, j, segment, f"p_{segment}"),
                 prediction=j.p_prediction)  # fmt: skip
    label = j.label.cast("int64")
    sums = {
        **{name: j.trace_id.count(where=j.kind == kind) for name, kind in kinds.items()},
        "labels": j.trace_id.count(where=j.is_label), "with_label": j.trace_id.nunique(where=j.is_label),
        "correct": (j.prediction == 1).ifelse(label, 1 - label).sum(where=j.is_label),
        "thumbs": j.trace_id.count(where=j.type == "thumb"), "thumbs_up": j.value.sum(where=j.type == "thumb"),
        "clicks": j.trace_id.count(where=j.type == "click"), "clicked": j.value.sum(where=j.type == "click"),
    }  # fmt: skip
    found = j.group_by(["bucket", "segment"]).aggregate(**{c: sums[c] for c in wanted})
    both = frame.left_join(found, ["bucket", "segment"])
    both = both.select("bucket", "segment", *[c for c in dict.fromkeys(("predictions", *counts)) if c in both.columns])
    return both.order_by(["bucket", "segment"]).execute()


def stream_series(
    store: Store,
    window: Window | None = None,
    granularity: str = "day",
    segment: str | None = None,
    label_types: Sequence[str] | None = None,
) -> pd.DataFrame:
    """:func:`series_from` over a short-lived read-only connection to ``store``."""
    with store.ibis() as con:
        return series_from(con, window, granularity, segment, label_types)


def calendar(first: pd.Timestamp, last: pd.Timestamp, granularity: str) -> pd.DatetimeIndex:
    """Every bucket start from ``first`` to ``last`` (both bucket starts), gaps included."""
    return pd.date_range(first, last, freq=BUCKET_LENGTH[granularity], name="bucket")


def on_calendar(frame: pd.DataFrame, buckets: pd.DatetimeIndex) -> pd.DataFrame:
    """One segment's series re-indexed on ``buckets``: a bucket without predictions gets zero counts."""
    counts = [c for c in frame.columns if c not in ("bucket", "segment")]
    full = frame.groupby("bucket")[counts].sum().reindex(buckets, fill_value=0)
    return full.reset_index()


def feedback_arrivals(
    con: Any,
    window: Window | None = None,
    granularity: str = "day",
    label_types: Sequence[str] | None = None,
    labels_only: bool = False,
) -> pd.DataFrame:
    """Feedback rows on the window's predictions by *arrival* bucket (feedback ts), kind and type.

    Columns: bucket, kind, type, rows, labels (rows that count as labels), first and last (the earliest and
    newest arrival in the cell). Orphan feedback (no prediction yet) has no prediction to filter on and is
    left out (see :func:`signal_quality_from`). ``labels_only`` (the triggers read labels only): only the rows
    that count as labels are matched with the predictions (rows = labels): on the demo a third of the feedback.
    """
    trunc = unit(granularity)
    f = con.table("feedback")
    if labels_only:
        f = f.filter(label_filter(f, label_types))
    f = trace_feedback.on_predictions(con, f, window)
    frame = (
        f.group_by(bucket=utc_bucket(f.ts, trunc), kind=f.kind, type=f.type)
        .aggregate(
            rows=f.count(),
            labels=f.trace_id.count(where=label_filter(f, label_types)),
            first=f.ts.min(),
            last=f.ts.max(),
        )
        .order_by(["bucket", "kind", "type"])
        .execute()
    )
    for column in ("bucket", "first", "last"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def labels_arrived_before(
    con: Any, moments: Sequence[pd.Timestamp], window: Window | None = None, label_types: Sequence[str] | None = None
) -> list[int]:
    """For each moment: labels on the window's predictions whose feedback ts is before it (one query)."""
    if not moments:
        return []
    f = con.table("feedback")
    f = trace_feedback.on_predictions(con, f.filter(label_filter(f, label_types)), window)
    counts = f.aggregate(
        **{f"m{i}": f.trace_id.count(where=f.ts < m.to_pydatetime()) for i, m in enumerate(moments)}
    ).execute()
    return [int(counts[f"m{i}"].iloc[0]) for i in range(len(moments))]


def versions_from(con: Any, window: Window | None = None) -> pd.DataFrame:
    """Model versions in the window: model_version, first_ts (when it started serving), last_ts, predictions."""
    p = filtered_predictions(con, window)
    frame = (
        p.group_by("model_version")
        .aggregate(first_ts=p.ts.min(), last_ts=p.ts.max(), predictions=p.count())
        .order_by(["first_ts", "model_version"])
        .execute()
    )
    for column in ("first_ts", "last_ts"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def clock_from(con: Any, window: Window | None = None) -> dict[str, pd.Timestamp | None]:
    """The stream's clock: ``as_of`` (newest prediction in the store, any filter), the window's first/last ts."""
    everything = con.table("predictions")
    p = filtered_predictions(con, window)
    newest = everything.ts.max().execute()
    span = p.aggregate(first=p.ts.min(), last=p.ts.max()).execute().iloc[0]
    return {"as_of": utc(newest), "first": utc(span["first"]), "last": utc(span["last"])}


def utc(value: Any) -> pd.Timestamp | None:
    """``value`` as a UTC timestamp (naive values are UTC), or None for a missing value."""
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def label_sources_from(con: Any) -> pd.DataFrame:
    """Which feedback carries labels: type, kind and labelled rows, most rows first."""
    f = con.table("feedback")
    f = f.filter(f.label.notnull())
    frame = f.group_by(["type", "kind"]).aggregate(labels=f.count()).execute()
    return frame.sort_values(["labels", "type"], ascending=[False, True], ignore_index=True)


def default_label_types(sources: pd.DataFrame) -> tuple[str, ...]:
    """The label sources the page starts with: the automated ones (outcomes a system records, unbiased by
    who chose to give feedback) when there are any, else every type that carries labels."""
    automated = sources.loc[sources["kind"] == "automated", "type"]
    return tuple(sorted(automated if len(automated) else sources["type"]))
