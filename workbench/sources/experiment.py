"""The experiment in the predictions: the feedback metrics catalogue and the arm/unit view of the rows.

Part of the data model (predictions carry ``arm`` and ``unit_id``; feedback carries typed values), shared
by the A/B analysis and the sums the ingest keeps per trace and per unit, so neither depends on the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.sources.chunks import utc_bucket
from workbench.sources.windowed import filtered_predictions


@dataclass(frozen=True)
class Metric:
    """A metric computed from feedback: its kind (proportion | mean | ratio), source type and direction."""

    name: str
    label: str
    kind: str
    feedback_type: str
    higher_is_better: bool = True
    unit: str = ""
    per_prediction: bool = False  # one observation per prediction (0 when no feedback) instead of per event

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "label": self.label, "kind": self.kind, "higher_is_better": self.higher_is_better}


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("thumbs_up_rate", "thumbs-up rate", "proportion", "thumb"),
        Metric("click_rate", "click rate", "proportion", "click"),
        Metric("correction_rate", "correction rate", "proportion", "correction", False, per_prediction=True),
        Metric("mean_rating", "mean rating", "mean", "rating", unit="stars"),
        Metric("dwell_time", "dwell time", "mean", "dwell", unit="s"),
        Metric("clicks_per_session", "clicks per session", "ratio", "click", per_prediction=True),
    )
}


ALIASES = {"thumbs_up": "thumbs_up_rate", "thumb": "thumbs_up_rate", "thumbs": "thumbs_up_rate", "ctr": "click_rate",
           "rating": "mean_rating", "dwell": "dwell_time", "correction": "correction_rate"}  # fmt: skip


def metric(name: str) -> Metric:
    """The metric called ``name`` (dashes, spaces and case ignored; a few aliases), or a one-line error."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    if key not in METRICS:
        raise InputError(f"unknown metric '{name}': use one of {', '.join(METRICS)}")
    return METRICS[key]


def experiment_predictions(
    con: Any,
    window: Window | None,
    arm_source: str = "auto",
    segments: tuple[str, ...] = (),
    keep: tuple[str, ...] = (),
) -> tuple[Any, str]:
    """Predictions in the experiment (arm not null) with ``trace_id, arm, unit, ts, day`` (+ segment columns,
    + the columns named in ``keep``, e.g. the ingest's per-trace feedback sums).

    ``arm_source``: ``arm`` (the arm role), ``model_version``, or ``auto`` (arm when any row has one).
    The unit is ``unit_id`` when set, else the prediction itself (each trace its own unit).
    """
    p = filtered_predictions(con, window)
    if arm_source == "auto":
        arm_source = "arm" if int(p.arm.count().execute()) > 0 else "model_version"
    if arm_source not in ("arm", "model_version"):
        raise InputError(f"arms come from 'arm' or 'model_version', not '{arm_source}'")
    p = p.filter(p[arm_source].notnull())
    columns = {f"seg_{i}": p[c].cast("string").fill_null("(missing)") for i, c in enumerate(segments)}
    exp = p.select(
        "trace_id", *keep, arm=p[arm_source].cast("string"), unit=p.unit_id.fill_null(p.trace_id), ts=p.ts,
        day=utc_bucket(p.ts, "D"), **columns,
    )  # fmt: skip
    return exp, arm_source


def units_by_arm(exp: Any, n_segments: int, sums: dict[str, Any] | None = None) -> Any:
    """One row per (unit, arm): first and last ts, and each segment's value at the unit's first exposure.

    The first exposure is the unit's least ``(ts, trace_id)`` prediction, one ``min`` over a struct that carries
    the segments: where a unit's first two predictions share a timestamp, the smaller trace id's row wins,
    whatever order the engine scans the rows in and whichever segments a request names (``arg_min(seg, ts)``
    kept whichever row came first: two runs over a 5M store gave other segments for a few units). The kept unit
    sums' rebuild at 5M took 0.65–0.72 s with it, 0.63–0.66 s with one ``arg_min`` per segment; the same SQL runs on
    Spark. ``sums``: more columns, each the sum of an expression over the unit's rows (the metrics' per-unit sums,
    in the same pass).
    """
    import ibis

    extra = {name: value.sum() for name, value in (sums or {}).items()}
    if not n_segments:
        return exp.group_by(["unit", "arm"]).aggregate(first=exp.ts.min(), last=exp.ts.max(), **extra)
    segs = [f"seg_{i}" for i in range(n_segments)]
    at_first = ibis.struct({"ts": exp.ts, "trace_id": exp.trace_id, **{s: exp[s] for s in segs}}).min()
    units = exp.group_by(["unit", "arm"]).aggregate(__at_first=at_first, last=exp.ts.max(), **extra)
    first = units["__at_first"]
    return units.select("unit", "arm", first=first["ts"], last=units["last"], **{s: first[s] for s in segs},
                        **{k: units[k] for k in extra})  # fmt: skip


def experiment_columns(m: Metric) -> dict[str, str]:
    """The kept per-trace columns metric ``m`` reads, by role: ``n`` (observations with a value), ``up``
    (values > 0), ``sum`` (Σ value), ``rows`` (feedback rows of its type, any value), ``values`` (the values).

    Event metrics: proportions n and up; means n, sum and values (Welch, Mann–Whitney and capping need the
    distribution). Per-prediction metrics: a proportion its rows (did the prediction get one), a ratio its sum.
    """
    t = m.feedback_type
    if m.per_prediction:
        return {"rows": f"ab_{t}_rows"} if m.kind == "proportion" else {"sum": f"ab_{t}_sum"}
    if m.kind == "proportion":
        return {"n": f"ab_{t}_n", "up": f"ab_{t}_up"}
    return {"n": f"ab_{t}_n", "sum": f"ab_{t}_sum", "values": f"ab_{t}_values"}


HIDDEN_PREFIX = "__fb_"  # the copies on the prediction rows: never a feature, a segment or a role


def hidden(count: str) -> str:
    """The predictions' column that holds ``count`` of the row's trace (null: no such feedback yet)."""
    return f"{HIDDEN_PREFIX}{count}"


def kept_columns(metrics: list[Metric]) -> tuple[str, ...]:
    """The predictions' hidden columns the metrics read (to carry along with the experiment's rows)."""
    names = {hidden(c) for m in metrics for c in experiment_columns(m).values()}
    return tuple(sorted(names))


def trace_observations(rows: Any, m: Metric) -> tuple[Any, Any]:
    """(observations, Σ value) of metric ``m`` on each prediction row, from its kept sums (0 without feedback).

    Event metrics: a proportion's observations are its feedback with a value and Σ value its positives (values
    > 0); a mean's, its values and their sum. Per-prediction metrics observe every prediction once: a
    proportion whether it got such feedback at all, a ratio the Σ value of its feedback (as
    :func:`workbench.abtest.queries.observations`).
    """
    col = {role: rows[hidden(c)] for role, c in experiment_columns(m).items()}
    once = rows.ts.notnull().cast("int64")  # ts is required at ingest: 1 on every row
    if m.per_prediction and m.kind == "proportion":
        return once, (col["rows"].fill_null(0) > 0).ifelse(1.0, 0.0)
    if m.per_prediction:
        return once, col["sum"].fill_null(0.0).cast("float64")
    if m.kind == "proportion":
        return col["n"].fill_null(0), col["up"].fill_null(0).cast("float64")
    return col["n"].fill_null(0), col["sum"].fill_null(0.0).cast("float64")
