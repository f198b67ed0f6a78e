"""Ibis aggregates for the fairness audit: confusion cells per group (and per time chunk, model version,
score decile) in one GROUP BY over the predictions joined with one label per trace.

Only the cells leave the engine: a few hundred rows whatever the number of predictions. Group keys
are the sensitive columns cast to text, a missing value being the group ``(missing)`` and a blank one
``(blank)``. The label of a trace comes from its labelled feedback (the types chosen, default all):
one label → that label; conflicting labels → the majority (a tie is dropped), or with ``conflict_policy="drop"`` every
conflict is dropped; both are counted. In file mode the label is a column of the file, and a row
without one is an unlabelled prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.fairness.file_queries import file_rows, frame_rows  # noqa: F401  (file mode; re-exported)
from workbench.sources import cursors, experiment, trace_feedback
from workbench.sources.chunks import DAY_US, epoch_us
from workbench.sources.store_queries import filtered_predictions
from workbench.stats.fairness import BLANK_GROUP, MISSING_GROUP, FairnessSettings

TIME_UNITS = {"day": 1, "week": 7}


def chunk_index(ts: Any, chunk: str) -> Any:
    """Day or ISO-week number since the epoch, as integer arithmetic on epoch microseconds.

    DuckDB truncates a TIMESTAMPTZ through ICU calendars (~0.2 µs a row, 1 s at 5M rows); the
    arithmetic is ~20× cheaper. 1970-01-01 was a Thursday, so (day + 3) // 7 starts weeks on Monday.
    """
    if not cursors.on_duckdb(ts):  # other engines: Ibis' portable epoch seconds and floor division
        day = ts.epoch_seconds() // 86_400
        return day if chunk == "day" else (day + 3) // 7
    day = _floor_div(epoch_us(ts), DAY_US)
    return day if chunk == "day" else _floor_div(day + 3, 7)


@ibis.udf.scalar.builtin(name="divide")
def _int_divide(a: dt.int64, b: dt.int64) -> dt.int64:  # type: ignore[valid-type]
    """DuckDB's integer division of BIGINTs (truncates toward zero, like SQL's ``/`` on integers elsewhere)."""


def _floor_div(a: Any, b: int) -> Any:
    """⌊a / b⌋ for b > 0 in integer arithmetic: truncated quotient, minus one when the remainder is negative.

    Ibis compiles ``//`` to FLOOR(a / b) through DOUBLE (~15% of the cells query at 5M rows); this is the
    same number (exact for every int64, where the DOUBLE form is exact only while a < 2^53).
    """
    return _int_divide(a, b) - ((a % b) < 0).cast("int64")


def chunk_start(index: Any, chunk: str) -> pd.Series:
    """The UTC start of a chunk number from :func:`chunk_index`."""
    days = pd.Series(index, dtype="int64") * TIME_UNITS[chunk] - (3 if chunk == "week" else 0)
    return pd.to_datetime(days, unit="D", utc=True)


COUNTS = (
    "n",
    "tp",
    "fp",
    "fn",
    "tn",
    "unlabelled_selected",
    "unlabelled_rejected",
    "score_n",
    "score_sum",
    "conflicting",
    "conflicts_dropped",
    "thumbs",
    "thumbs_up",
    "ratings",
    "rating_sum",
    "rating_sumsq",
)
SIGNALS = ("thumbs", "thumbs_up", "ratings", "rating_sum", "rating_sumsq")  # per-trace thumb and rating sums
KEY_PREFIX = "g__"  # group key columns are g__<attribute>, so an attribute may be called "n" or "label"


def group_value(column: Any) -> Any:
    """A sensitive column as its group name: text; null → "(missing)", blank text → "(blank)" (named, never dropped)."""
    text = column.cast("string")
    return ibis.cases((text.isnull(), MISSING_GROUP), (text.strip() == "", BLANK_GROUP), else_=text)


def group_key(column: str) -> str:
    """The name of the group key column of a sensitive attribute in the cells frame."""
    return f"{KEY_PREFIX}{column}"


def _per_trace_feedback(f: Any, settings: FairnessSettings, signals: bool = True) -> Any:
    """One row per trace with feedback: its label (policy applied), whether its labels conflict, thumbs
    (and up), ratings (count, sum, sum of squares). Resolving the label here, before the join, keeps
    the join's projection trivial (the engine's cost is in the rows, not in the traces with feedback).
    The counts: :func:`workbench.sources.trace_feedback.per_trace_counts`.
    """
    types = (settings.label_types, settings.thumb_type, settings.rating_type)
    return _resolve_label(trace_feedback.per_trace_counts(f, *types, signals=signals), settings, signals)


def _resolve_label(
    per: Any, settings: FairnessSettings, signals: bool = True, keep: Sequence[str] = ("trace_id",)
) -> Any:
    """The per-trace label from its counts of labels and positive labels, by the conflict policy (with the
    signal columns of ``per`` when ``signals``). ``keep``: the columns of ``per`` carried along (the trace
    id; or, on the predictions' own copies of the counts, the row's columns)."""
    n, pos = per.n_labels, per.n_positive
    if settings.conflict_policy == "majority":
        label = ibis.cases((2 * pos > n, 1), (2 * pos < n, 0), else_=ibis.null())
    elif settings.conflict_policy == "drop":
        label = ibis.cases(((n > 0) & (pos == n), 1), ((n > 0) & (pos == 0), 0), else_=ibis.null())
    else:
        raise InputError(f"conflict policy must be majority or drop, not '{settings.conflict_policy}'")
    return per.select(
        *keep,
        *(SIGNALS if signals else ()),
        label=ibis.ifelse(n > 0, label, ibis.null()).cast("int8"),
        conflicting=(pos > 0) & (pos < n),
    )


def has_signals(con: Any, settings: FairnessSettings) -> bool:
    """Whether the store holds any thumb or rating feedback with a value (stops at the first such row)."""
    feedback = con.table("feedback")
    kinds = feedback.filter(feedback.type.isin([settings.thumb_type, settings.rating_type]) & feedback.value.notnull())
    return bool(kinds.limit(1).count().execute())


def store_rows(
    con: Any, window: Window | None, sensitive: Sequence[str], settings: FairnessSettings, signals: bool | None = None
) -> Any:
    """Predictions in ``window`` with one label per trace and their feedback counts, as an Ibis table.

    When the ingest's copies of the per-trace counts on the prediction rows are current for these settings
    (:mod:`workbench.sources.trace_feedback`), they are read with the row: no join; else the feedback is
    grouped per trace and joined (the same numbers; ~0.5 s more at 5M predictions and 2M labels).

    Columns: prediction, score, ts, model_version, the sensitive columns, label (0/1 or null),
    conflicting (its labels disagreed), thumbs, thumbs_up, ratings, rating_sum, rating_sumsq (null
    for a prediction without feedback; the sums skip nulls). ``signals``: :func:`has_signals` when the
    caller already asked (None: ask).
    """
    p = filtered_predictions(con, window)
    visible = [c for c in p.columns if not c.startswith(experiment.HIDDEN_PREFIX)]
    missing = [c for c in sensitive if c not in visible]
    if missing:
        raise InputError(f"no column '{missing[0]}' in the predictions: {', '.join(visible)}")
    signals = has_signals(con, settings) if signals is None else signals
    own = {*trace_feedback.COUNTS, "label", "conflicting"}  # an attribute of such a name: the join keeps it apart
    if trace_feedback.is_current(con, settings) and not own & set(sensitive):  # each row has its counts: no join
        counts = {c: p[experiment.hidden(c)] for c in trace_feedback.COUNTS}
        rows = p.select("prediction", "score", "ts", "model_version", *sensitive, **counts)
        j = _resolve_label(rows, settings, signals, keep=("prediction", "score", "ts", "model_version", *sensitive))
    else:
        per_trace = _per_trace_feedback(con.table("feedback"), settings, signals)
        j = p.select("trace_id", "prediction", "score", "ts", "model_version", *sensitive)
        j = j.left_join(per_trace, "trace_id").drop("trace_id", "trace_id_right")
    if not signals:  # null after the join, not carried through its hash table (5 columns × every labelled trace)
        j = j.mutate(
            **{c: ibis.null().cast("int64") for c in SIGNALS[:3]},
            **{c: ibis.null().cast("float64") for c in SIGNALS[3:]},
        )
    return j


def count_groups(base: Any, sensitive: Sequence[str]) -> int:
    """How many distinct groups (combinations of the sensitive values, missing included) the predictions hold."""
    keys = base.select(**{group_key(c): group_value(base[c]) for c in sensitive})
    return int(keys.distinct().count().execute())


def score_edges(bins: int) -> list[float]:
    """The inner edges of ``bins`` equal-width score bins: [0, 0.1), …, [0.9, 1] for 10 (no pass over the data).

    Equal-width bins are the reliability diagram's (scikit-learn ``calibration_curve(strategy="uniform")``);
    quantile edges would cost a pass over every score. Each bin's mean score and positive rate are exact.
    """
    return [i / bins for i in range(1, bins)] if bins >= 2 else []


def bin_index(score: Any, edges: Sequence[float]) -> Any:
    """The count of ``edges`` at or below ``score``, as an Ibis integer expression (DuckDB orders NaN above all).

    For the equal-width edges of :func:`score_edges` it is k = ⌊score·bins⌋ clipped to [0, bins − 1],
    moved by one where rounding put it on the wrong side of an edge (k/bins and (k+1)/bins are the very
    doubles of ``score_edges``, both being correctly rounded quotients): 4 comparisons a row instead of
    bins − 1 (~20% of the cells query at 5M rows). Other edges: one comparison per edge.
    """
    bins = len(edges) + 1
    if [float(e) for e in edges] != score_edges(bins):
        return sum((score >= float(e)).cast("int8") for e in edges)
    k = ibis.greatest(ibis.least(score * bins, bins - 1), 0).floor()  # clipped first: ±inf → a bin, not an error
    up = ((k < bins - 1) & (score >= (k + 1).cast("float64") / bins)).cast("int64")
    down = ((k > 0) & (score < k.cast("float64") / bins)).cast("int64")
    return k + up - down


def profile(base: Any, sensitive: Sequence[str], by_version: bool) -> tuple[int, pd.DataFrame | None]:
    """One pass over the predictions in scope: an upper bound of the number of groups and the model versions.

    Per model version (when ``by_version``): first and last ts and the number of predictions (oldest
    first), and each attribute's approximate distinct count (HyperLogLog). The bound is the product over
    attributes of (Σ over versions of the distinct counts + 1 for a missing value): the union of the
    versions' values is never larger than the sum, so the bound never under-counts (up to HLL's ~2%).
    """
    distinct = {f"d{i}": base[c].approx_nunique() for i, c in enumerate(sensitive)}
    if by_version:
        frame = (
            base.group_by("model_version")
            .aggregate(first_ts=base.ts.min(), last_ts=base.ts.max(), predictions=base.count(), **distinct)
            .execute()
        )
    else:
        frame = base.aggregate(**distinct).execute()
    bound = 1
    for i in range(len(sensitive)):
        bound *= int(frame[f"d{i}"].fillna(0).sum()) + 1
    if not by_version:
        return bound, None
    spans = frame[frame["model_version"].notna()].drop(columns=list(distinct))
    for column in ("first_ts", "last_ts"):
        spans[column] = pd.to_datetime(spans[column], utc=True)
    return bound, spans.sort_values(["first_ts", "model_version"]).reset_index(drop=True)


def cells(
    rows: Any,
    sensitive: Sequence[str],
    chunk: str | None = None,
    by_version: bool = False,
    edges: Sequence[float] = (),
    overlap: tuple[Any, Any] | None = None,
    signals: bool = True,
) -> pd.DataFrame:
    """Confusion cells and feedback sums per group (× chunk × model_version × score decile × overlap), one GROUP BY.

    Columns: the group keys (``g__<attribute>``, text, "(missing)" for null), then ``chunk`` (UTC start
    of the day/week) when ``chunk`` is given, ``model_version`` when ``by_version``, ``decile`` (0-based
    score bin of a labelled row: the count of ``edges`` at or below its score; -1 for unlabelled rows or
    no score) when ``edges``, ``in_overlap`` when ``overlap`` = (first, last) ts; then :data:`COUNTS`.
    ``signals=False`` says the thumb and rating columns are null (a file, a store without such feedback):
    their sums are then zeros without being summed.
    """
    # The engine groups by the raw values (plus label, prediction and the conflict flag) with plain counts
    # and sums: no per-row string work or conditional aggregates, ~3× faster at 5M rows. The few hundred
    # resulting rows are then named ("(missing)", "(blank)") and rolled into the cells here.
    raw = [f"r__{i}" for i in range(len(sensitive))]
    keys: dict[str, Any] = {r: rows[c].cast("string") for r, c in zip(raw, sensitive, strict=True)}
    if chunk is not None:
        if chunk not in TIME_UNITS:
            raise InputError(f"time chunk must be one of {', '.join(TIME_UNITS)}, not '{chunk}'")
        keys["chunk"] = chunk_index(rows.ts, chunk)
    if by_version:
        keys["model_version"] = rows.model_version
    if edges:
        index = bin_index(rows.score, edges)
        keys["decile"] = ibis.ifelse(rows.label.notnull() & rows.score.notnull(), index, -1).cast("int8")
    if overlap is not None:
        keys["in_overlap"] = rows.ts.between(overlap[0], overlap[1])
    outer = [k for k in keys if k not in raw]
    keys.update(y__=rows.label, yhat__=rows.prediction, conflict__=rows.conflicting)
    sums = {c: rows[c].sum() for c in SIGNALS} if signals else {}
    grouped = rows.group_by(**keys).aggregate(
        n=rows.count(), score_n=rows.score.count(), score_sum=rows.score.sum(), **sums
    )
    small = grouped.execute()
    for column in SIGNALS if not signals else ():
        small[column] = 0.0
    return _roll_up(small, sensitive, raw, outer, chunk)


def _name(values: pd.Series) -> pd.Series:
    """Group names of raw values: null → "(missing)", blank text → "(blank)" (same rule as :func:`group_value`)."""
    text = values.astype(object)
    blank = text.notna() & (text.astype(str).str.strip() == "")
    return text.where(text.notna(), MISSING_GROUP).where(~blank, BLANK_GROUP).astype(str)


def _roll_up(
    small: pd.DataFrame, sensitive: Sequence[str], raw: list[str], outer: list[str], chunk: str | None
) -> pd.DataFrame:
    """The engine's (raw value × label × prediction) counts as the cells frame of :func:`cells`."""
    y, yhat, conflict = small["y__"], small["yhat__"], small["conflict__"].fillna(False).astype(bool)
    n = small["n"].astype("float64")
    labelled = y.notna()
    scored_labelled = labelled.to_numpy()
    frame = pd.DataFrame({group_key(c): _name(small[r]) for c, r in zip(sensitive, raw, strict=True)})
    for key in outer:
        frame[key] = small[key]
    frame["n"] = n
    frame["tp"] = n.where((y == 1) & (yhat == 1), 0.0)
    frame["fp"] = n.where((y == 0) & (yhat == 1), 0.0)
    frame["fn"] = n.where((y == 1) & (yhat == 0), 0.0)
    frame["tn"] = n.where((y == 0) & (yhat == 0), 0.0)
    frame["unlabelled_selected"] = n.where(~labelled & (yhat == 1), 0.0)
    frame["unlabelled_rejected"] = n.where(~labelled & (yhat == 0), 0.0)
    frame["score_n"] = small["score_n"].astype("float64").where(scored_labelled, 0.0)
    frame["score_sum"] = small["score_sum"].astype("float64").where(scored_labelled, 0.0)
    frame["conflicting"] = n.where(conflict, 0.0)
    frame["conflicts_dropped"] = n.where(conflict & ~labelled, 0.0)
    for column in ("thumbs", "thumbs_up", "ratings", "rating_sum", "rating_sumsq"):
        frame[column] = small[column].astype("float64")
    frame[list(COUNTS)] = frame[list(COUNTS)].fillna(0.0)
    keys = [group_key(c) for c in sensitive] + outer
    frame = frame.groupby(keys, as_index=False, dropna=False, sort=True)[list(COUNTS)].sum()
    if "chunk" in frame:
        frame["chunk"] = chunk_start(frame["chunk"], chunk)
    return frame
