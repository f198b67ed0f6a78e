"""Ibis expressions that turn the store's tables into small aggregates.

Everything here is written against Ibis so the same code runs on DuckDB (the default) or on
Spark, BigQuery, Snowflake when a user outgrows one machine; only aggregates leave the engine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.core.window import Window
from workbench.sources.store import Store, stored_roles


def filtered_predictions(backend: Any, window: Window | None = None) -> Any:
    """Return the predictions table filtered by ``window`` as an Ibis expression."""
    p = backend.table("predictions")
    if window is None:
        return p
    if window.start is not None:
        p = p.filter(p.ts >= window.start)
    if window.end is not None:
        p = p.filter(p.ts < window.end)
    if window.model_versions:
        p = p.filter(p.model_version.isin(list(window.model_versions)))
    return p


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
        stats = p.aggregate(n=p.count(), first=p.ts.min(), last=p.ts.max()).execute().iloc[0]
        n_predictions = int(stats["n"])
        versions = (
            p.group_by("model_version")
            .aggregate(n=p.count(), first_ts=p.ts.min(), last_ts=p.ts.max())
            .order_by("first_ts")
            .execute()
        )
        traces = f.select("trace_id").distinct()
        labelled = f.filter(f.label.notnull()).select("trace_id").distinct()
        with_any = p.semi_join(traces, "trace_id").count().execute() if n_predictions else 0
        with_label = p.semi_join(labelled, "trace_id").count().execute() if n_predictions else 0
        all_predictions = con.table("predictions").select("trace_id")
        orphans = f.anti_join(all_predictions, "trace_id").count().execute()
        by_kind = f.group_by("kind").aggregate(n=f.count()).order_by("kind").execute()
        by_type = f.group_by("type").aggregate(n=f.count()).order_by("type").execute()
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
        feedback=int(by_kind["n"].sum()),
        quarantined=int(reasons["n"].sum()),
        first_ts=_iso(stats["first"]),
        last_ts=_iso(stats["last"]),
        model_versions=[
            {
                "model_version": r.model_version,
                "n": int(r.n),
                "first_ts": _iso(r.first_ts),
                "last_ts": _iso(r.last_ts),
            }
            for r in versions.itertuples()
        ],
        feedback_by_kind={r.kind: int(r.n) for r in by_kind.itertuples()},
        feedback_by_type={r.type: int(r.n) for r in by_type.itertuples()},
        coverage_any=with_any / n_predictions if n_predictions else None,
        coverage_labelled=with_label / n_predictions if n_predictions else None,
        orphan_feedback=int(orphans),
        quarantine_by_reason={r.reason: int(r.n) for r in reasons.itertuples()},
        features=list(roles.features or []),
        categorical=list(roles.categorical or []),
        sensitive=list(roles.sensitive),
        ingests=int(n_ingests),
    )


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
        day = joined.ts.truncate("D").name("day")
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
