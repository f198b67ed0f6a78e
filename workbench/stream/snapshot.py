"""The feedback stream page's data as one result object, read from one consistent snapshot of the store.

Every aggregate of a refresh runs over ONE short read-only connection, so when another process
(`workbench simulate`, an ingest) appends while the page reads, the page shows the store before a
batch or after it, never half of it: each batch is one transaction, and a connection opened after
its commit sees all of it. A reader that finds the file locked by a writer retries briefly
(:meth:`workbench.sources.store.Store._open`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.settings import load_section
from workbench.core.window import Window
from workbench.sources.store import Store
from workbench.stats.intervals import wilson_interval
from workbench.stream.buckets import BUCKET_LENGTH, bucket_label
from workbench.stream.quality import LabelDelays, SignalQuality, label_delays_from, signal_quality_from
from workbench.stream.queries import SERIES_COUNTS, calendar, clock_from, feedback_arrivals, series_from, versions_from

# rate column → (successes, trials): the proportions the page draws with a Wilson band
RATES = {
    "accuracy": ("correct", "labels"),
    "thumbs_up_rate": ("thumbs_up", "thumbs"),
    "click_through_rate": ("clicked", "clicks"),
    "coverage_any": ("with_feedback", "predictions"),
    "coverage_labelled": ("with_label", "predictions"),
}


@dataclass(frozen=True)
class StreamSettings:
    """Defaults of the stream page ([stream] in settings.toml)."""

    # Shade buckets younger than the delay by which this share of labels has arrived.
    labels_complete_share: float = 0.95
    # Label delay: histogram bin width, and the age after which a prediction's labels count as all in.
    delay_bin_hours: float = 6.0
    delay_horizon_days: float = 30.0
    # Fewer labels than this in the mature cohort: measure the delay on every prediction (censored).
    min_delay_labels: int = 100
    # Confidence of the Wilson bands around rates.
    confidence: float = 0.95
    # Seconds between refreshes in live mode.
    live_refresh_seconds: float = 3.0
    # In live mode the rules (drift and CBPE rules run whole analyses) are re-evaluated at most this often.
    live_rules_seconds: float = 60.0


def stream_settings() -> StreamSettings:
    """The [stream] settings (defaults overridden by settings.toml / $WORKBENCH_SETTINGS)."""
    return load_section(StreamSettings, "stream")


def add_rates(series: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """``series`` with each rate of :data:`RATES` and its Wilson band (``<rate>_lower``, ``<rate>_upper``).

    rate = successes / trials, NaN where trials = 0; the band is
    :func:`workbench.stats.intervals.wilson_interval` at ``confidence``.
    """
    out = series.copy()
    for rate, (successes, trials) in RATES.items():
        k, n = out[successes].to_numpy(float), out[trials].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[rate] = np.where(n > 0, k / n, np.nan)
        out[f"{rate}_lower"], out[f"{rate}_upper"] = wilson_interval(k, n, confidence)
    return out


@dataclass(frozen=True)
class StreamSnapshot:
    """The stream under the active filters, per bucket, with how final its labels are and how clean it is.

    ``series``: one row per bucket and segment with the counts of
    :func:`workbench.stream.queries.series_from`, the rates of :data:`RATES` with Wilson bands,
    ``bucket_end`` and ``labels_complete`` (the bucket ended at least the delay by which
    ``labels_complete_share`` of labels arrive before ``as_of``). ``as_of`` is the newest prediction in
    the store: the stream's clock.
    """

    granularity: str
    segment: str | None
    label_types: tuple[str, ...]
    as_of: pd.Timestamp | None
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    series: pd.DataFrame
    totals: dict[str, Any]
    arrivals: pd.DataFrame
    versions: pd.DataFrame
    delays: LabelDelays
    quality: SignalQuality
    labels_complete_share: float
    labels_complete_hours: float | None
    labels_incomplete_from: pd.Timestamp | None
    confidence: float = 0.95  # the level of the Wilson bands (settings: [stream] confidence)

    @property
    def empty(self) -> bool:
        """True when the window holds no predictions."""
        return self.series.empty

    def latest_complete_accuracy(self, min_labels: int = 30) -> dict[str, Any] | None:
        """Accuracy of the newest bucket whose labels are complete and number at least ``min_labels`` (all
        segments together: an hour with 2 labels says nothing), or None."""
        overall = self.overall()
        done = overall[overall["labels_complete"] & (overall["labels"] >= max(min_labels, 1))]
        if done.empty:
            return None
        row = done.iloc[-1]
        return {
            "bucket": bucket_label(row["bucket"], self.granularity),
            "accuracy": float(row["accuracy"]),
            "lower": float(row["accuracy_lower"]),
            "upper": float(row["accuracy_upper"]),
            "labels": int(row["labels"]),
        }

    def overall(self) -> pd.DataFrame:
        """The series with segments summed: one row per bucket, rates recomputed."""
        counts = [c for c in self.series.columns if c in _COUNTS]
        summed = self.series.groupby("bucket", as_index=False)[counts].sum()
        flags = self.series.groupby("bucket", as_index=False)[["bucket_end", "labels_complete", "observed"]].first()
        return add_rates(summed.merge(flags, on="bucket"))

    def verdict(self) -> str:
        """What the stream says, in a sentence or three."""
        t = self.totals
        if not t["predictions"]:
            return "No predictions in the selected window."
        text = (
            f"{t['predictions']:,} predictions from {self.first:%Y-%m-%d %H:%M} to {self.last:%Y-%m-%d %H:%M} UTC; "
            f"{_pct(t['coverage_any'])} have feedback and {_pct(t['coverage_labelled'])} a label."
        )
        latest = self.latest_complete_accuracy()
        if latest is not None and t["accuracy"] is not None:
            text += (
                f" Online accuracy of the newest bucket with complete labels ({latest['bucket']}) is "
                f"{latest['accuracy']:.3f} ({self.confidence:.0%} CI {latest['lower']:.3f}–{latest['upper']:.3f}, "
                f"{latest['labels']:,} labels), against {t['accuracy']:.3f} over the whole window."
            )
        if self.labels_incomplete_from is not None and self.labels_complete_hours is not None:
            text += (
                f" Labels are still arriving from {bucket_label(self.labels_incomplete_from, self.granularity)} on "
                f"({self.labels_complete_share:.0%} arrive within {self.labels_complete_hours / 24:.1f} days):"
                " those numbers will move."
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: totals, clock, versions, label delay, signal quality and the overall series."""
        overall = self.overall()
        records = []
        for row in overall.itertuples():
            records.append(
                {
                    "bucket": bucket_label(row.bucket, self.granularity),
                    **{c: int(getattr(row, c)) for c in _COUNTS},
                    **{r: _num(getattr(row, r)) for r in RATES},
                    "labels_complete": bool(row.labels_complete),
                    "observed": round(float(row.observed), 4),
                }
            )
        return {
            "granularity": self.granularity,
            "segment": self.segment,
            "label_types": list(self.label_types),
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "totals": self.totals,
            "labels_complete_share": self.labels_complete_share,
            "labels_complete_hours": self.labels_complete_hours,
            "labels_incomplete_from": None
            if self.labels_incomplete_from is None
            else bucket_label(self.labels_incomplete_from, self.granularity),
            "versions": [
                {
                    "model_version": r.model_version,
                    "first_ts": r.first_ts.isoformat(),
                    "predictions": int(r.predictions),
                }
                for r in self.versions.itertuples()
            ],
            "label_delay": self.delays.to_dict(),
            "signal_quality": self.quality.to_dict(),
            "series": records,
            "verdict": self.verdict(),
        }


_COUNTS = SERIES_COUNTS


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _totals(series: pd.DataFrame) -> dict[str, Any]:
    sums = {c: int(series[c].sum()) for c in _COUNTS}
    sums["feedback"] = sums["feedback_explicit"] + sums["feedback_implicit"] + sums["feedback_automated"]
    rates = {rate: (sums[k] / sums[n] if sums[n] else None) for rate, (k, n) in RATES.items()}
    return {**sums, **rates}


def labels_complete_mask(
    buckets: pd.Series, granularity: str, as_of: pd.Timestamp | None, settle_hours: float | None
) -> pd.Series:
    """Per bucket: True when it ended at least ``settle_hours`` before ``as_of`` (its labels are complete).

    A bucket's youngest prediction is at its end, so every prediction in it is at least that old.
    Without a measured delay every bucket counts as complete (nothing to shade).
    """
    if as_of is None or settle_hours is None:
        return pd.Series(True, index=buckets.index)
    return (buckets + BUCKET_LENGTH[granularity]) <= as_of - pd.Timedelta(hours=settle_hours)


PARTIAL_BELOW = 0.9  # a bucket the stream covers less than 90% of is drawn as partial (a first day from 00:58 is not)


def observed_share(
    buckets: pd.Series, granularity: str, first: pd.Timestamp | None, last: pd.Timestamp | None
) -> pd.Series:
    """Per bucket, the share of its length inside the stream's observed span [first, last] (1.0: all of it).

    The first and last week of a window rarely start on a Monday and end on a Sunday, and the newest day
    or hour of a live stream is still running: their volumes are short because part of the bucket was
    not observed, not because traffic fell. Charts draw buckets under :data:`PARTIAL_BELOW` as partial.
    """
    if first is None or last is None or buckets.empty:
        return pd.Series(1.0, index=buckets.index)
    length = BUCKET_LENGTH[granularity]
    start = buckets.where(buckets > first, first)
    end = (buckets + length).where(buckets + length < last, last)
    return ((end - start) / length).clip(lower=0.0, upper=1.0)


def snapshot_from(
    con: Any,
    window: Window | None = None,
    granularity: str = "day",
    segment: str | None = None,
    label_types: Sequence[str] | None = None,
    settings: StreamSettings | None = None,
) -> StreamSnapshot:
    """Build the :class:`StreamSnapshot` over one open Ibis backend (one consistent read)."""
    settings = settings or StreamSettings()
    label_types = tuple(label_types or ())
    clock = clock_from(con, window)
    series = series_from(con, window, granularity, segment, label_types)
    if not series.empty:  # every segment on the full calendar, so a quiet bucket shows as zero, not a gap
        buckets = calendar(series["bucket"].min(), series["bucket"].max(), granularity)
        index = pd.MultiIndex.from_product([buckets, series["segment"].unique()], names=["bucket", "segment"])
        series = series.set_index(["bucket", "segment"]).reindex(index, fill_value=0).reset_index()
    delays = label_delays_from(
        con,
        window,
        clock["as_of"],
        label_types,
        shares=sorted({0.5, 0.9, 0.95, round(settings.labels_complete_share, 6)}),
        bin_hours=settings.delay_bin_hours,
        horizon_days=settings.delay_horizon_days,
        min_labels=settings.min_delay_labels,
    )
    settle = delays.quantile_hours(settings.labels_complete_share)
    series["bucket_end"] = series["bucket"] + BUCKET_LENGTH[granularity]
    series["labels_complete"] = labels_complete_mask(series["bucket"], granularity, clock["as_of"], settle)
    series["observed"] = observed_share(series["bucket"], granularity, clock["first"], clock["last"])
    series = add_rates(series, settings.confidence)
    pending = series.loc[~series["labels_complete"], "bucket"]
    return StreamSnapshot(
        granularity=granularity,
        segment=segment,
        label_types=label_types,
        as_of=clock["as_of"],
        first=clock["first"],
        last=clock["last"],
        series=series,
        totals=_totals(series),
        arrivals=feedback_arrivals(con, window, granularity, label_types),
        versions=versions_from(con, window),
        delays=delays,
        quality=signal_quality_from(con, window, granularity),
        labels_complete_share=settings.labels_complete_share,
        confidence=settings.confidence,
        labels_complete_hours=settle,
        labels_incomplete_from=None if pending.empty else pending.min(),
    )


def stream_snapshot(
    store: Store,
    window: Window | None = None,
    granularity: str = "day",
    segment: str | None = None,
    label_types: Sequence[str] | None = None,
    settings: StreamSettings | None = None,
) -> StreamSnapshot:
    """The stream page's data from one short-lived read-only connection to ``store`` (one snapshot)."""
    with store.ibis() as con:
        return snapshot_from(con, window, granularity, segment, label_types, settings)
