"""Ibis expressions that turn the store's tables into small aggregates.

Everything here is written against Ibis so the same code runs on DuckDB (the default) or on
Spark, BigQuery, Snowflake when a user outgrows one machine; only aggregates leave the engine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.core.window import Window
from workbench.sources import snapshot_memo, trace_feedback
from workbench.sources.chunks import utc_bucket
from workbench.sources.experiment import hidden
from workbench.sources.store import Store, stored_roles
from workbench.sources.windowed import filtered_predictions


@dataclass(frozen=True)
class StoreSummary:
    """What is in the store: volumes, time range, versions, feedback coverage and quarantine."""

    path: str
    predictions: int
    feedback: int
    quarantined: int
    first_ts: str | None
    last_ts: str | None
    model_versions: list[dict[str, Any]]
    feedback_by_kind: dict[str, int]
    feedback_by_type: dict[str, int]
    coverage_any: float | None
    coverage_labelled: float | None
    orphan_feedback: int
    quarantine_by_reason: dict[str, int]
    features: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    sensitive: list[str] = field(default_factory=list)
    ingests: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the `workbench info --json` document)."""
        return asdict(self)


def _iso(value: Any) -> str | None:
    return None if value is None or value != value else value.isoformat()


def store_summary(store: Store, window: Window | None = None) -> StoreSummary:
    """Summarise the store (prediction-side numbers respect ``window``) from a few aggregates.

    Coverage is the share of predictions with any feedback, and with a labelled feedback
    (`label` not null); orphan feedback is feedback whose trace_id has no prediction yet.
    """
    with store.ibis() as con:
        p = filtered_predictions(con, window)
        f = con.table("feedback")
        quarantine = con.table("quarantine")
        versions = (
            p.group_by("model_version")
            .aggregate(n=p.count(), first_ts=p.ts.min(), last_ts=p.ts.max())
            .order_by("first_ts")
            .execute()
        )
        n_predictions = int(versions["n"].sum())
        kinds = f.group_by(["kind", "type"]).aggregate(n=f.count()).execute()  # one scan for both breakdowns
        by_kind, by_type = (kinds.groupby(key, dropna=False)["n"].sum() for key in ("kind", "type"))
        n_feedback = int(kinds["n"].sum())
        with_any, with_label, orphans = feedback_coverage(con, p, n_feedback, window is None)
        reasons = (
            quarantine.group_by("reason")
            .aggregate(n=quarantine.count())
            .order_by([quarantine.count().desc(), "reason"])
            .execute()
        )
        n_ingests = con.table("ingests").count().execute()
        roles = stored_roles(con.con).predictions
    return StoreSummary(
        path=str(store.path),
        predictions=n_predictions,
        feedback=n_feedback,
        quarantined=int(reasons["n"].sum()),
        first_ts=_iso(versions["first_ts"].min()) if n_predictions else None,
        last_ts=_iso(versions["last_ts"].max()) if n_predictions else None,
        model_versions=[
            {
                "model_version": r.model_version,
                "n": int(r.n),
                "first_ts": _iso(r.first_ts),
                "last_ts": _iso(r.last_ts),
            }
            for r in versions.itertuples()
        ],
        feedback_by_kind={kind: int(n) for kind, n in by_kind.items()},
        feedback_by_type={kind: int(n) for kind, n in by_type.items()},
        coverage_any=with_any / n_predictions if n_predictions else None,
        coverage_labelled=with_label / n_predictions if n_predictions else None,
        orphan_feedback=int(orphans),
        quarantine_by_reason={r.reason: int(r.n) for r in reasons.itertuples()},
        features=list(roles.features or []),
        categorical=list(roles.categorical or []),
        sensitive=list(roles.sensitive),
        ingests=int(n_ingests),
    )


def whole_sum(value: Any) -> int:
    """An engine's integer sum as an int: 0 for the NULL (None or NaN) of a sum over no rows."""
    return 0 if value is None or value != value else int(value)


def feedback_coverage(con: Any, p: Any, n_feedback: int, whole: bool) -> tuple[int, int, int]:
    """(predictions of ``p`` with any feedback, with a labelled one, feedback rows whose trace has no prediction),
    ``n_feedback`` being the store's feedback rows.

    A store written by this build's ingest keeps each trace's feedback counts on its prediction rows
    (:mod:`workbench.sources.trace_feedback`): one scan, no join. Elsewhere (a lake, Spark, an older store) the
    feedback is grouped per trace once and left-joined to the predictions; with ``whole`` (``p`` is every
    prediction) the orphans are the feedback rows that join nothing, else an anti-join over all predictions.
    A lake on DuckDB keeps the ``whole`` numbers per snapshot of its files (:mod:`workbench.sources.snapshot_memo`).
    A trace has one prediction (the ingest's duplicate rule; a lake leaves its repeats out).
    """
    f = con.table("feedback")
    if trace_feedback.copies_current(con):
        rows, labels = p[hidden("n_feedback")], p[hidden("n_labels")]
        row = p.aggregate(with_any=p.count(where=rows > 0), with_label=p.count(where=labels > 0), linked=rows.sum())
        row = row.execute().iloc[0]
        if not whole:
            every = con.table("predictions")
            row["linked"] = every.aggregate(n=every[hidden("n_feedback")].sum()).execute().iloc[0]["n"]
        return int(row["with_any"]), int(row["with_label"]), n_feedback - whole_sum(row["linked"])
    per = f.group_by("trace_id").aggregate(n=f.count(), labelled=f.label.count())
    j = p.select("trace_id").left_join(per, "trace_id")

    def joined() -> dict[str, int]:
        row = j.aggregate(with_any=j.count(where=j.n.notnull()), with_label=j.count(where=j.labelled > 0),
                          linked=j.n.sum()).execute().iloc[0]  # fmt: skip
        linked = whole_sum(row["linked"])
        # on Spark Ibis counts with SUM(CAST(condition AS BIGINT)): NULL when no prediction has feedback
        return {"with_any": whole_sum(row["with_any"]), "with_label": whole_sum(row["with_label"]), "linked": linked}

    if whole:  # every prediction: the same numbers for every process reading this snapshot of a lake
        row = snapshot_memo.remembered(con, "coverage", joined)
        return row["with_any"], row["with_label"], n_feedback - row["linked"]
    row = joined()
    orphans = int(f.anti_join(con.table("predictions").select("trace_id"), "trace_id").count().execute())
    return row["with_any"], row["with_label"], orphans


def daily_volume(store: Store, window: Window | None = None) -> Any:
    """Return a DataFrame ``day, model_version, predictions, feedback`` (feedback by prediction day).

    Feedback is counted on the day of the prediction it refers to, so a recent day whose
    feedback is still arriving shows up as a lower feedback-per-prediction ratio.
    """
    with store.ibis() as con:
        p = filtered_predictions(con, window)
        f = con.table("feedback")
        per_trace = f.group_by("trace_id").aggregate(n_feedback=f.count())
        joined = p.left_join(per_trace, "trace_id")
        day = utc_bucket(joined.ts, "D").name("day")
        grouped = joined.group_by([day, joined.model_version]).aggregate(
            predictions=joined.count(), feedback=joined.n_feedback.fill_null(0).sum()
        )
        frame = grouped.order_by(["day", "model_version"]).execute()
    frame["feedback"] = frame["feedback"].astype("int64")
    return frame


def store_bounds(store: Store) -> tuple[dt.datetime, dt.datetime] | None:
    """(first ts, last ts) of the store's predictions, or None when it has none."""
    with store.ibis() as con:
        p = con.table("predictions")
        row = p.aggregate(first=p.ts.min(), last=p.ts.max()).execute().iloc[0]
    if row["first"] is None or row["first"] != row["first"]:
        return None
    return row["first"].to_pydatetime(), row["last"].to_pydatetime()
