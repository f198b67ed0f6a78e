"""How final and how clean the feedback stream is: label delay, and the quality of the signal.

Label delay is feedback ts − prediction ts of labelled feedback. The recent predictions' late
labels have not arrived yet, so a delay distribution taken over every prediction is biased toward
short delays (right-censored). We measure it on a *mature cohort*: predictions older than a horizon
(30 days by default), whose labels are all in; when the window has too few of those, we use every
prediction and say the estimate is censored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import pandas as pd

from workbench.core.window import Window
from workbench.sources.chunks import seconds_between, utc_bucket
from workbench.sources.trace_feedback import on_predictions, orphans_of
from workbench.stream.queries import label_filter, unit

DAY_S = 86_400.0


@dataclass(frozen=True)
class LabelDelays:
    """The label-delay distribution of the window's predictions (a mature cohort when there is one).

    ``histogram``: delay_hours (bin start), type, labels. ``arrived_within``: days, share (share of the
    cohort's labels that arrived at most that many days after their prediction). ``quantiles``: share →
    hours (the delay by which that share of labels had arrived; exact, engine-side ``quantile_cont``).
    ``censored``: the cohort could not be restricted to predictions older than the horizon.
    """

    histogram: pd.DataFrame
    arrived_within: pd.DataFrame
    quantiles: dict[float, float]
    labels: int
    horizon_days: float
    cohort_end: pd.Timestamp | None
    censored: bool
    negative: int

    def quantile_hours(self, share: float) -> float | None:
        """The delay (hours) by which ``share`` of labels arrived, if it was measured."""
        return self.quantiles.get(round(share, 6))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "labels": self.labels,
            "horizon_days": self.horizon_days,
            "cohort_end": None if self.cohort_end is None else self.cohort_end.isoformat(),
            "censored": self.censored,
            "negative_delays": self.negative,
            "quantiles_hours": {str(k): v for k, v in self.quantiles.items()},
            "arrived_within_days": {int(r.days): float(r.share) for r in self.arrived_within.itertuples()},
        }


def label_delays_from(
    con: Any,
    window: Window | None,
    as_of: pd.Timestamp | None,
    label_types: Sequence[str] | None = None,
    shares: Sequence[float] = (0.5, 0.9, 0.95),
    bin_hours: float = 6.0,
    horizon_days: float = 30.0,
    min_labels: int = 100,
    with_histogram: bool = True,
) -> LabelDelays:
    """Measure label delay on the window's predictions older than ``horizon_days`` (before ``as_of``).

    Negative delays (a label timestamped before its prediction: clock skew) count as 0. Without ``with_histogram``
    (a trigger needs only the quantiles) the histogram and the shares arrived within each day are empty: one join
    of the feedback with the predictions instead of two (three when the mature cohort is too small and every label
    is read), and no 30 conditional counts (3.1 s -> 2.4 s of a summary at 20M, loaded machine).
    """
    if not with_histogram:
        return label_delays_many(con, window, as_of, [label_types], shares, horizon_days, min_labels)[0]
    j, cohort_end = _labelled_rows(con, window, as_of, [label_types], horizon_days)
    days = range(1, int(horizon_days) + 1)
    [(j, censored, summary)] = _summaries(j, cohort_end, [None], shares, days, min_labels)
    n = int(summary["n"])
    bin_index = (_seconds(j)[1] / (3600.0 * bin_hours)).floor()
    histogram = j.group_by(bin_index=bin_index, type=j.type).aggregate(labels=j.count()).execute()
    histogram["delay_hours"] = histogram.pop("bin_index").astype(float) * bin_hours
    histogram = histogram[["delay_hours", "type", "labels"]].sort_values(["delay_hours", "type"], ignore_index=True)
    arrived = pd.DataFrame(
        {"days": list(days), "share": [int(summary[f"d{d}"]) / n if n else float("nan") for d in days]}
    )
    return _delays(summary, shares, histogram, arrived, horizon_days, None if censored else cohort_end, censored)


def label_delays_many(
    con: Any,
    window: Window | None,
    as_of: pd.Timestamp | None,
    label_type_sets: Sequence[Sequence[str] | None],
    shares: Sequence[float] = (0.5, 0.9, 0.95),
    horizon_days: float = 30.0,
    min_labels: int = 100,
) -> list[LabelDelays]:
    """:func:`label_delays_from` without histogram for each of several ``label_type_sets`` (None: every label), from
    one join of their label rows with the predictions: the trigger rules that wait for their labels to settle (at
    20M predictions each join took ~1.3 s of its ~1.7 s, 2 cores). Each set's mature cohort, or all its labels when
    the cohort holds fewer than ``min_labels``, as for one set."""
    j, cohort_end = _labelled_rows(con, window, as_of, label_type_sets, horizon_days)
    found = _summaries(j, cohort_end, list(label_type_sets), shares, range(0), min_labels)
    empty_histogram = pd.DataFrame({"delay_hours": pd.Series(dtype=float), "type": pd.Series(dtype=object),
                                    "labels": pd.Series(dtype="int64")})  # fmt: skip
    arrived = pd.DataFrame({"days": [], "share": []})
    return [_delays(summary, shares, empty_histogram, arrived, horizon_days, None if censored else cohort_end,
                    censored) for _rows, censored, summary in found]  # fmt: skip


def _labelled_rows(
    con: Any, window: Window | None, as_of: pd.Timestamp | None, sets: Sequence[Sequence[str] | None], horizon: float
) -> tuple[Any, pd.Timestamp | None]:
    """(the label rows of any of ``sets`` joined with their prediction's ts ``p_ts``, the mature cohort's end)."""
    f = con.table("feedback")
    keep = label_filter(f, sets[0])
    for label_types in sets[1:]:
        keep = keep | label_filter(f, label_types)
    j = on_predictions(con, f.filter(keep), window, ("ts",))
    cohort_end = None if as_of is None else as_of - pd.Timedelta(days=horizon)
    return j.select("trace_id", "type", "label", "ts", "p_ts"), cohort_end


def _seconds(rows: Any) -> tuple[Any, Any]:
    """(feedback ts − prediction ts in seconds, the same with a negative delay as 0)."""
    raw = seconds_between(rows.ts, rows.p_ts)
    return raw, (raw < 0).ifelse(0, raw)


def _summaries(
    j: Any, cohort_end: pd.Timestamp | None, sets: list[Sequence[str] | None], shares: Sequence[float], days: range,
    min_labels: int,
) -> list[tuple[Any, bool, pd.Series]]:  # fmt: skip
    """Per label-type set (``None`` in ``sets``: every row of ``j``): (its rows, censored, its summary: n, negative,
    ``q<i>`` per share, ``d<day>`` per day), each set's mature cohort in one query and, for the sets whose cohort
    holds fewer than ``min_labels``, all their labels in a second."""

    def summarise(rows: Any, which: list[int]) -> dict[int, pd.Series]:
        raw, seconds = _seconds(rows)
        aggregates = {}
        for i in which:
            where = label_filter(rows, sets[i]) if sets[i] else None
            aggregates |= {
                f"n_{i}": rows.trace_id.count(where=where),
                f"negative_{i}": rows.trace_id.count(where=_both(where, raw < 0)),
                **{f"q{k}_{i}": seconds.quantile(s, where=where) for k, s in enumerate(shares)},
                **{f"d{d}_{i}": rows.trace_id.count(where=_both(where, seconds <= d * DAY_S)) for d in days},
            }
        row = rows.aggregate(**aggregates).execute().iloc[0]
        return {i: pd.Series({k.rsplit("_", 1)[0]: v for k, v in row.items() if k.endswith(f"_{i}")}) for i in which}

    found: dict[int, tuple[Any, bool, pd.Series]] = {}
    todo = list(range(len(sets)))
    if cohort_end is not None:  # the mature cohort's summaries, where they hold enough labels (their n say so)
        mature = j.filter(j.p_ts <= cohort_end.to_pydatetime())
        for i, summary in summarise(mature, todo).items():
            if int(summary["n"]) >= min_labels:
                found[i] = (mature, False, summary)
        todo = [i for i in todo if i not in found]
    if todo:
        found |= {i: (j, True, summary) for i, summary in summarise(j, todo).items()}
    return [found[i] for i in range(len(sets))]


def _both(where: Any, condition: Any) -> Any:
    """``condition`` within ``where`` (None: every row)."""
    return condition if where is None else where & condition


def _delays(
    summary: pd.Series, shares: Sequence[float], histogram: pd.DataFrame, arrived: pd.DataFrame, horizon_days: float,
    cohort_end: pd.Timestamp | None, censored: bool,
) -> LabelDelays:  # fmt: skip
    n = int(summary["n"])
    quantiles = {
        round(s, 6): float(summary[f"q{i}"]) / 3600.0
        for i, s in enumerate(shares)
        if n and not pd.isna(summary[f"q{i}"])
    }
    return LabelDelays(histogram, arrived, quantiles, n, horizon_days, cohort_end, censored, int(summary["negative"]))


@dataclass(frozen=True)
class SignalQuality:
    """Quarantine by reason and duplicates at ingest (by ingest time), conflicts and repeats (by
    prediction bucket), orphans (by arrival), and their totals."""

    quarantine: pd.DataFrame
    ingest_duplicates: pd.DataFrame
    conflicts: pd.DataFrame
    orphans: pd.DataFrame
    totals: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the totals and quarantine rows by reason."""
        by_reason = self.quarantine.groupby("reason")["rows"].sum() if len(self.quarantine) else pd.Series()
        return {**self.totals, "quarantine_by_reason": {str(k): int(v) for k, v in by_reason.items()}}


def signal_quality_from(con: Any, window: Window | None = None, granularity: str = "day") -> SignalQuality:
    """Quarantined rows by reason and identical rows dropped at ingest (per ingest bucket, not filtered:
    a rejected row has no valid prediction to filter on); traces with conflicting labels (two labelled
    feedback rows that disagree) and traces with the same feedback type more than once (per prediction
    bucket, window applied); orphan feedback (no prediction in the store; window's time range applied to
    the feedback ts)."""
    trunc = unit(granularity)
    q = con.table("quarantine")
    quarantine = (
        q.group_by(bucket=utc_bucket(q.quarantined_at, trunc), table=q.table_name, reason=q.reason)
        .aggregate(rows=q.count())
        .order_by(["bucket", "table", "reason"])
        .execute()
    )
    ing = con.table("ingests")
    duplicates = (
        ing.filter(ing.duplicates > 0)
        .group_by(bucket=utc_bucket(ing.ingested_at, trunc), table=ing.table_name)
        .aggregate(duplicates=ing.duplicates.sum())
        .order_by(["bucket", "table"])
        .execute()
    )
    f = con.table("feedback")
    # each trace's feedback with its prediction's ts (the kept copy, else a join): grouped by trace once for the
    # conflicts and once by (trace, type) for the repeats; no semi-join and membership test over every prediction
    scoped = on_predictions(con, f, window, ("ts",))
    labelled = scoped.filter(scoped.label.notnull())
    conflicting = (
        labelled.group_by("trace_id")
        .aggregate(lo=labelled.label.min(), hi=labelled.label.max(), p_ts=labelled.p_ts.max())
        .filter(lambda t: t.lo != t.hi)
    )
    repeats = scoped.group_by(["trace_id", "type"]).aggregate(n=scoped.count(), p_ts=scoped.p_ts.max())
    repeated = repeats.filter(repeats.n > 1).group_by("trace_id").aggregate(p_ts=repeats.p_ts.max())
    flagged = ibis.union(
        conflicting.select(bucket=utc_bucket(conflicting.p_ts, trunc), conflicting=ibis.literal(1), repeated=0),
        repeated.select(bucket=utc_bucket(repeated.p_ts, trunc), conflicting=ibis.literal(0), repeated=1),
        distinct=False,
    )
    conflicts = (
        flagged.group_by("bucket")
        .aggregate(conflicting=flagged.conflicting.sum(), repeated=flagged.repeated.sum())
        .order_by("bucket")
        .execute()
    )
    orphan = orphans_of(con, f)
    if window is not None and window.start is not None:
        orphan = orphan.filter(orphan.ts >= window.start)
    if window is not None and window.end is not None:
        orphan = orphan.filter(orphan.ts < window.end)
    orphans = orphan.group_by(bucket=utc_bucket(orphan.ts, trunc)).aggregate(rows=orphan.count()).order_by("bucket")
    orphans = orphans.execute()
    for frame in (quarantine, duplicates, conflicts, orphans):
        frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    totals = {
        "quarantined": int(quarantine["rows"].sum()),
        "duplicates_at_ingest": int(duplicates["duplicates"].sum()),
        "conflicting_label_traces": int(conflicts["conflicting"].sum()),
        "repeated_feedback_traces": int(conflicts["repeated"].sum()),
        "orphan_feedback": int(orphans["rows"].sum()),
    }
    return SignalQuality(quarantine, duplicates, conflicts, orphans, totals)
