"""Each prediction's feedback counts, kept by the ingest: the fairness audit reads its labels without a join.

The audit needs one label per prediction. Grouping the feedback by trace and joining it to 5M predictions
took ~0.6 s of a ~1.2 s audit (2M labels, 2 cores), and the join was its floor. So every ingest keeps, in
its own transaction (still all-or-nothing):

- the table ``trace_feedback``: one row per trace with feedback, its counts from
  :func:`per_trace_counts` with the default types (every labelled type, thumbs of type ``thumb``,
  ratings of type ``rating``), recomputed whole for each trace a feedback ingest touches;
- a copy of those counts on the trace's prediction rows (columns ``__fb_<count>``, null without such
  feedback), written for the touched traces, and for new predictions whose feedback came first;
- beside them, the per-trace sums the A/B analysis reads (:data:`EXPERIMENT`: for each metric's feedback type
  its observations, positives, Σ value and, for mean metrics, the values themselves), so the analysis groups
  the predictions by unit once and joins no feedback (:mod:`workbench.abtest.kept`).
- and every trace's number of feedback rows (``n_feedback``), from which the store summary (``workbench info``,
  the Home page) counts coverage and orphan feedback with one scan: 0.2 s instead of ~8 s of joins at 20M;
- and its latest label of the automated kind (``automated_label``, :data:`KEPT_LABEL_KINDS`: the label of
  its newest such row), the one label per trace that realised and estimated accuracy read
  (:func:`labels_per_trace`): a column read instead of grouping every label and
  joining the groups to the predictions.
- the other way round, on each feedback row, its prediction's ts and prediction
  (:data:`PREDICTION_COPIES`, columns ``__fb_p_<column>``, null while the trace has no prediction): the feedback
  stream's series, arrivals and label delays count feedback rows by their prediction's bucket or window, and read
  these instead of joining millions of feedback rows to the predictions (:func:`on_predictions`).
- and, on each prediction, its calibration fold (``__fb_fold``, :data:`PREDICTION_KEYS`: a function of its trace id
  alone, :func:`~workbench.sources.hashing.calibration_fold`), written as the row is inserted: the estimated
  performance's reference counts read it instead of hashing millions of trace ids (MD5 of 6.7M ids took 1.2 s).

The audit then reads the label counts with each prediction (one scan, no join) and applies the label policy
(majority or drop) as it reads. It does so only while a stamp in ``meta`` (each stream's row count and last
ingest id when the copies were written) matches both streams now; a store from an older build, rows added or
removed behind the ingest's back, or other label types make it group the feedback itself (the same numbers,
the old cost), and the next ingest rebuilds both whole. The stamp does not see a row edited in place (a
checksum of both tables would cost ~0.3 s per audit at 5M rows, the very time saved): the store is written by
the ingest only, append-only. The ``__fb_`` columns are never features, segments or sensitive attributes, and
no file (predictions or feedback) may bring a column of that name, in any case (one that an older build let in is
left alone: the copies are then not written and every reader joins). Nor are they written while a trace id has
two predictions (rows written behind the ingest's back): a feedback row's copy would hold one of them where a
join counts it twice, so every reader joins, with the join's numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from workbench.core.window import Window
from workbench.sources import unit_sums
from workbench.sources.experiment import METRICS, experiment_columns, hidden
from workbench.sources.hashing import calibration_fold
from workbench.sources.store import literal, read_meta, write_meta
from workbench.sources.windowed import filtered_predictions, window_condition

TABLE = "trace_feedback"
VERSION = 6  # bump when the table's columns or their meaning change: a stamp of another version is stale
_STAMP = "trace_feedback"
_SOURCE = "__trace_feedback_source__"
_OWNER = "workbench: trace feedback counts"  # the comment on our __fb_ columns (a user's has none)
_DEFAULT_TYPES = {"label_types": [], "thumb_type": "thumb", "rating_type": "rating"}
KEPT_LABEL_KINDS = ("automated",)  # the feedback kinds of ``automated_label`` (the accuracy's default label kinds)


def per_trace_counts(
    f: Any,
    label_types: Sequence[str] = (),
    thumb_type: str = "thumb",
    rating_type: str = "rating",
    signals: bool = True,
    experiment: bool = False,
) -> Any:
    """One row per trace with a label, thumb or rating: ``trace_id, n_labels, n_positive`` and (with
    ``signals``) ``thumbs, thumbs_up, ratings, rating_sum, rating_sumsq``, before any label policy (Ibis).

    ``f``: the feedback table. Labels of ``label_types`` (empty: every type); thumbs up are values > 0.
    Without ``signals`` (no thumb or rating feedback in the store) only the labelled traces and their two
    counts: ~35% cheaper at 5M predictions. ``experiment`` (what the ingest keeps): also the A/B sums of
    :data:`EXPERIMENT`, ``n_feedback`` (every feedback row of the trace, whatever its type) and
    ``automated_label`` (the label of the trace's newest labelled row of :data:`KEPT_LABEL_KINDS`), with a row
    for every trace with feedback: the store summary reads its coverage and orphans from them, with no join.
    """
    is_label = f.label.notnull()
    if label_types:
        is_label = is_label & f.type.isin(list(label_types))
    if not signals:
        f = f.filter(is_label)
        return f.group_by("trace_id").aggregate(
            n_labels=f.count(), n_positive=f.label.cast("int64").sum().cast("int64").fill_null(0)
        )
    is_thumb = (f.type == thumb_type) & f.value.notnull()
    is_rating = (f.type == rating_type) & f.value.notnull()
    f = f.mutate(is_label=is_label, is_thumb=is_thumb, is_rating=is_rating)
    if not experiment:
        f = f.filter(f.is_label | f.is_thumb | f.is_rating)
    sums = {}
    if experiment:
        automated = f.label.notnull() & f.kind.isin(list(KEPT_LABEL_KINDS))
        sums = {"n_feedback": f.count(), "automated_label": latest_label(f, automated), **experiment_sums(f)}
    return f.group_by("trace_id").aggregate(
        n_labels=f.trace_id.count(where=f.is_label),
        n_positive=f.label.cast("int64").sum(where=f.is_label).cast("int64").fill_null(0),
        thumbs=f.trace_id.count(where=f.is_thumb),
        thumbs_up=f.trace_id.count(where=f.is_thumb & (f.value > 0)),
        ratings=f.trace_id.count(where=f.is_rating),
        rating_sum=f.value.sum(where=f.is_rating),
        rating_sumsq=(f.value * f.value).sum(where=f.is_rating),
        **sums,
    )


_ROLE_TYPES = {"n": "BIGINT", "up": "BIGINT", "rows": "BIGINT", "sum": "DOUBLE", "values": "DOUBLE[]"}


def _experiment_types() -> dict[str, str]:
    out: dict[str, str] = {}
    for m in METRICS.values():
        out.update({column: _ROLE_TYPES[role] for role, column in experiment_columns(m).items()})
    return dict(sorted(out.items()))


def experiment_sums(f: Any) -> dict[str, Any]:
    """The Ibis aggregates of :data:`EXPERIMENT` over feedback rows ``f`` (grouped by trace by the caller).

    As the A/B analysis's join reads events (:func:`workbench.abtest.queries.event_observations`): an
    observation is a row of the type with a value; a proportion's success is a value > 0.
    """
    out = {}
    for m in METRICS.values():
        of_type = f.type == m.feedback_type
        with_value = of_type & f.value.notnull()
        aggregates = {"n": f.trace_id.count(where=with_value), "up": f.trace_id.count(where=with_value & (f.value > 0)),
                      "sum": f.value.sum(where=of_type), "rows": f.trace_id.count(where=of_type),
                      "values": f.value.collect(where=with_value)}  # fmt: skip
        out.update({column: aggregates[role] for role, column in experiment_columns(m).items()})
    return dict(sorted(out.items()))


def latest_label(f: Any, where: Any = None) -> Any:
    """The label of the newest labelled row of feedback ``f`` (within ``where``), as an Ibis aggregate; of rows with
    the same ts the larger label, so the kept copy and a grouping at read time agree whatever the rows' order. The
    key is a struct (ts, label): an ordered aggregate (``first`` with ``order_by``) does not compile for Spark."""
    import ibis

    return f.label.argmax(ibis.struct({"ts": f.ts, "label": f.label}), where=where)


def counts_sql(source: str) -> str:
    """DuckDB SQL of :func:`per_trace_counts` with the default types over ``source`` (a table name or a
    parenthesised subquery). Only Ibis is imported: the ingest pays ~0.4 s for it, not the audit's imports."""
    import ibis

    schema = ibis.schema({"trace_id": "string", "ts": "timestamp('UTC')", "kind": "string", "type": "string",
                          "value": "float64", "label": "int8"})  # fmt: skip
    table = ibis.table(schema, name=_SOURCE)
    expr = per_trace_counts(table, _DEFAULT_TYPES["label_types"], _DEFAULT_TYPES["thumb_type"],
                            _DEFAULT_TYPES["rating_type"], experiment=True)  # fmt: skip
    return ibis.to_sql(expr, dialect="duckdb").replace(f'"{_SOURCE}"', source)


COUNTS = {"n_labels": "BIGINT", "n_positive": "BIGINT", "thumbs": "BIGINT", "thumbs_up": "BIGINT",
          "ratings": "BIGINT", "rating_sum": "DOUBLE", "rating_sumsq": "DOUBLE"}  # fmt: skip
EXPERIMENT = _experiment_types()  # the A/B sums kept beside COUNTS (column → SQL type)
FEEDBACK_ROWS = {"n_feedback": "BIGINT"}  # every feedback row of the trace (the store summary's coverage)
LABEL = {"automated_label": "TINYINT"}  # the trace's latest label of KEPT_LABEL_KINDS (null: none)
KEPT = {**COUNTS, **FEEDBACK_ROWS, **LABEL, **EXPERIMENT}  # every column of the table, copied onto the predictions
# the prediction's columns copied onto each of its feedback rows (a required role each, so always there). Fixed
# width only: at 5M predictions the model version's VARCHAR copy took 21 s to update, ts and prediction 1 s.
PREDICTION_COPIES = {"ts": "TIMESTAMP WITH TIME ZONE", "prediction": "TINYINT"}


PREDICTION_KEYS = {"fold": "TINYINT"}  # kept on each prediction from its own trace id (:func:`key_sql`)


@functools.cache
def key_sql(key: str, trace: str) -> str:
    """DuckDB SQL of :data:`PREDICTION_KEYS`' ``key`` of the trace id column ``trace``: the Ibis expression's own SQL
    (compiled once against a placeholder and its column renamed), so the kept key is the one computed at read time."""
    import ibis
    import sqlglot as sg

    source = ibis.table({"trace_id": "string"}, name="__key_source__")
    expressions = {"fold": calibration_fold}
    sql = ibis.to_sql(source.select(key=expressions[key](source.trace_id)), dialect="duckdb")
    projection = sg.parse_one(sql, read="duckdb").expressions[0].this
    return projection.transform(lambda n: sg.column(trace) if isinstance(n, sg.exp.Column) else n).sql("duckdb")


def kept_fold(rows: Any) -> Any | None:
    """The predictions ``rows``' kept calibration fold (an Ibis column), or None where it is not there or not current
    (a lake, Spark, an older store, rows written behind the ingest's back): the caller hashes the trace ids."""
    column = hidden("fold")
    return rows[column] if column in rows.columns and copies_current(rows._find_backend()) else None


def on_prediction(column: str) -> str:
    """The feedback's column holding its prediction's ``column`` (:data:`PREDICTION_COPIES`)."""
    return hidden(f"p_{column}")


def trace_bounds(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    column: str = "trace_id",
    where: str = "",
    params: list[Any] | None = None,
) -> tuple[str, str] | None:
    """The least and greatest trace id in ``column`` of ``relation`` (rows matching ``where``), None without one."""
    low, high = con.execute(f"SELECT min({column}), max({column}) FROM {relation} {where}", params or []).fetchone()
    return None if low is None else (str(low), str(high))


def within(column: str, bounds: tuple[str, str] | None) -> str:
    """`` AND column BETWEEN low AND high`` (nothing without ``bounds``), added where a set of trace ids is matched.

    The same rows match, but DuckDB skips each row group whose trace ids lie outside the bounds: an ingest's joins
    then read the store's rows near its own, not the whole table, where ids grow with time (a demo chunk's ids, a
    ULID) or arrive in batches. At 12M predictions a count over one demo chunk's range took 0.06 s, 1.3 s over all.
    """
    if bounds is None:
        return ""
    return f" AND {column} BETWEEN {literal(bounds[0])} AND {literal(bounds[1])}"


def _state(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Each stream's row count and largest ingest id (what the stamp must match), in one query."""
    row = con.execute(
        "SELECT (SELECT count(*) FROM predictions), (SELECT max(ingest_id) FROM predictions), "
        "(SELECT count(*) FROM feedback), (SELECT max(ingest_id) FROM feedback)"
    ).fetchall()[0]
    return {table: {"rows": int(row[2 * i]), "last_ingest": None if row[2 * i + 1] is None else int(row[2 * i + 1])}
            for i, table in enumerate(("predictions", "feedback"))}  # fmt: skip


def _check(con: duckdb.DuckDBPyConnection, state: dict[str, Any]) -> tuple[bool, bool, Any]:
    """(the copies are current, the unit sums are current too, the stamp) against ``state``, in two queries.

    The unit sums depend on the roles too (their segment columns) and have their own version, so they can be
    stale on their own: an ingest that adds a role (or the first ingest of a build with another
    :data:`unit_sums.VERSION`) rebuilds them alone, and meanwhile the copies are still read.
    """
    stamp = read_meta(con, _STAMP)
    if not (isinstance(stamp, dict) and stamp.get("version") == VERSION and stamp.get("state") == state):
        return False, False, stamp
    tables = dict(
        con.execute(  # one catalog query for the three tables (information_schema costs ~6 ms a call)
            "SELECT table_name, list(column_name || ' ' || data_type) FROM duckdb_columns() "
            "WHERE schema_name = 'main' AND table_name IN ('predictions', 'feedback', ?, ?) GROUP BY table_name",
            [TABLE, unit_sums.TABLE],
        ).fetchall()
    )
    columns = dict(c.split(" ", 1) for c in tables.get("predictions", []))
    on_feedback = dict(c.split(" ", 1) for c in tables.get("feedback", []))
    copies = (
        stamp.get("types") == _DEFAULT_TYPES
        and stamp.get("copies") is True
        and TABLE in tables
        and all(columns.get(hidden(c)) == dtype for c, dtype in {**KEPT, **PREDICTION_KEYS}.items())
        and all(on_feedback.get(on_prediction(c)) == dtype for c, dtype in PREDICTION_COPIES.items())
    )
    segments = unit_sums.segment_columns(con, list(columns))
    kept_units = {c.split(" ", 1)[0] for c in tables.get(unit_sums.TABLE, [])}
    units = (
        copies
        and stamp.get("segments") == segments
        and stamp.get("units_version") == unit_sums.VERSION
        and set(unit_sums.columns(segments)) <= kept_units
    )
    return copies, units, stamp


def _stamp(con: duckdb.DuckDBPyConnection, copies: bool = True, segments: list[str] | None = None) -> None:
    write_meta(con, _STAMP, {"version": VERSION, "types": _DEFAULT_TYPES, "state": _state(con), "copies": copies,
                             "segments": segments, "units_version": unit_sums.VERSION})  # fmt: skip


def _copy_to_predictions(con: duckdb.DuckDBPyConnection, where: str = "", params: list[Any] | None = None) -> None:
    """Copy the table's counts onto the prediction rows of their traces (those matching ``where`` too)."""
    sets = ", ".join(f"{hidden(c)} = t.{c}" for c in KEPT)
    con.execute(
        f"UPDATE predictions SET {sets} FROM {TABLE} t WHERE predictions.trace_id = t.trace_id {where}", params or []
    )


def _copy_to_feedback(con: duckdb.DuckDBPyConnection, where: str = "", params: list[Any] | None = None) -> None:
    """Copy each prediction's :data:`PREDICTION_COPIES` onto its feedback rows (those matching ``where`` too)."""
    sets = ", ".join(f"{on_prediction(c)} = p.{c}" for c in PREDICTION_COPIES)
    con.execute(
        f"UPDATE feedback SET {sets} FROM predictions p WHERE feedback.trace_id = p.trace_id {where}", params or []
    )


def copies_on_insert(
    con: duckdb.DuckDBPyConnection, table: str, trace: str, bounds: tuple[str, str] | None = None
) -> tuple[str, str, str]:
    """(``, column…``, ``, expression…``, a join clause) with which an ingest's ``INSERT … SELECT … FROM decided``
    fills its feedback rows' copies of their prediction (:data:`PREDICTION_COPIES`), or its predictions' keys
    (:data:`PREDICTION_KEYS`), as it writes them, ``trace`` being ``decided``'s trace id column; three empty strings
    for a table without them (the ingest's :func:`after_ingest` then rebuilds them whole).

    One join of the new rows with their predictions as they are inserted: an ``UPDATE`` of a demo chunk's 1.1M
    feedback rows afterwards took 2.1 s at 20M predictions. The predictions are grouped by trace (one row each even
    if a row was written behind the ingest's back), so no feedback row is ever written twice. ``bounds``: trace ids
    at or beyond the new rows' least and greatest (:func:`within`).
    """
    present = {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? AND comment = ?",
        [table, _OWNER]).fetchall()}  # fmt: skip
    if table == "predictions":  # the keys of the trace id: no join
        if not all(hidden(k) in present for k in PREDICTION_KEYS):
            return "", "", ""
        return ("".join(f", {hidden(k)}" for k in PREDICTION_KEYS),
                "".join(f", {key_sql(k, trace)}" for k in PREDICTION_KEYS), "")  # fmt: skip
    if table != "feedback" or not all(on_prediction(c) in present for c in PREDICTION_COPIES):
        return "", "", ""
    columns = "".join(f", {on_prediction(c)}" for c in PREDICTION_COPIES)
    values = "".join(f", __prediction.__pc_{c}" for c in PREDICTION_COPIES)
    firsts = ", ".join(f"min({c}) AS __pc_{c}" for c in PREDICTION_COPIES)  # one row a trace (unique by the ingest)
    join = (f"LEFT JOIN (SELECT trace_id AS __pc_trace, {firsts} FROM predictions WHERE trace_id IN "
            f"(SELECT {trace} FROM decided){within('trace_id', bounds)} GROUP BY trace_id) __prediction "
            f"ON __prediction.__pc_trace = {trace}")  # fmt: skip
    return columns, values, join


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Write the whole table from the feedback, copy it onto the predictions (and each prediction's columns onto
    its feedback) and stamp it (caller's transaction)."""
    con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS {counts_sql('feedback')}")
    notes = dict(
        con.execute(
            "SELECT table_name || '.' || column_name, comment FROM duckdb_columns() "
            "WHERE schema_name = 'main' AND table_name IN ('predictions', 'feedback')"
        ).fetchall()
    )
    ours = {**{f"predictions.{hidden(c)}": t for c, t in {**KEPT, **PREDICTION_KEYS}.items()},
            **{f"feedback.{on_prediction(c)}": t for c, t in PREDICTION_COPIES.items()}}  # fmt: skip
    if any(c in notes and notes[c] != _OWNER for c in ours):  # a user's column (older build): left alone
        _stamp(con, copies=False)
        return
    if con.execute("SELECT count(*) <> count(DISTINCT trace_id) FROM predictions").fetchall()[0][0]:
        _stamp(con, copies=False)  # a trace with two predictions (behind the ingest's back): every reader joins
        return
    for column, dtype in ours.items():
        if column not in notes:
            table, name = column.split(".")
            con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {dtype}")
            con.execute(f"COMMENT ON COLUMN {column} IS '{_OWNER}'")
    # only the rows whose trace lost its feedback are cleared: the copy below writes every other one whole (clearing
    # all 14M copies at 20M predictions first doubled the rebuild's updates: 78 s and a 12 GB peak, now 52 s, 6.3 GB)
    clear = ", ".join(f"{hidden(c)} = NULL" for c in KEPT)
    con.execute(f"UPDATE predictions SET {clear} WHERE {hidden('n_labels')} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {TABLE} t WHERE t.trace_id = predictions.trace_id)")  # fmt: skip
    _copy_to_predictions(con)
    clear = ", ".join(f"{on_prediction(c)} = NULL" for c in PREDICTION_COPIES)
    con.execute(f"UPDATE feedback SET {clear} WHERE {on_prediction('ts')} IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM predictions p WHERE p.trace_id = feedback.trace_id)")  # fmt: skip
    _copy_to_feedback(con)
    keys = ", ".join(f"{hidden(k)} = {key_sql(k, 'trace_id')}" for k in PREDICTION_KEYS)
    con.execute(f"UPDATE predictions SET {keys} WHERE {' OR '.join(f'{hidden(k)} IS NULL' for k in PREDICTION_KEYS)}")
    segments = unit_sums.segment_columns(con)
    unit_sums.rebuild(con, segments)
    _stamp(con, segments=segments)


def after_ingest(con: duckdb.DuckDBPyConnection, table: str, ingest_id: int, accepted: int) -> None:
    """Bring the table and the predictions' copies up to date after ``accepted`` rows of ingest ``ingest_id``
    landed in ``table`` (predictions or feedback), in the same transaction.

    When the stamp matched both streams before this ingest, only what it touched is recomputed:
    feedback → the traces it names, from all their feedback (a late label for an old trace gives that
    trace's whole count again, nothing is added up), then their prediction rows; predictions → the new
    rows whose trace already had feedback (orphans), and those feedback rows get the prediction's columns (a
    feedback ingest's own rows got theirs as they were inserted: :func:`copies_on_insert`). Otherwise everything
    is rebuilt whole.
    """
    state = _state(con)
    before = {
        **state,
        table: {"rows": state[table]["rows"] - accepted, "last_ingest": _last_before(con, table, ingest_id)},
    }
    copies, units, _ = _check(con, before)
    if not copies:
        rebuild(con)
        return
    segments = unit_sums.segment_columns(con)
    if accepted and table == "feedback":
        con.execute(
            "CREATE OR REPLACE TEMP TABLE __touched_traces AS "
            "SELECT DISTINCT trace_id FROM feedback WHERE ingest_id = ?",
            [ingest_id],
        )
        bounds = trace_bounds(con, "__touched_traces")
        con.execute(f"DELETE FROM {TABLE} WHERE trace_id IN (SELECT trace_id FROM __touched_traces)"
                    f"{within('trace_id', bounds)}")  # fmt: skip
        source = ("(SELECT * FROM feedback WHERE trace_id IN (SELECT trace_id FROM __touched_traces)"
                  f"{within('trace_id', bounds)})")  # fmt: skip
        con.execute(f"INSERT INTO {TABLE} {counts_sql(source)}")
        _copy_to_predictions(con, "AND t.trace_id IN (SELECT trace_id FROM __touched_traces)"
                             f"{within('t.trace_id', bounds)}{within('predictions.trace_id', bounds)}")  # fmt: skip
        if units:
            touched = unit_sums.touched_by_traces("__touched_traces", within("trace_id", bounds))
            unit_sums.update(con, segments, *touched)
        con.execute("DROP TABLE __touched_traces")
    elif accepted:
        bounds = trace_bounds(con, "predictions", where="WHERE ingest_id = ?", params=[ingest_id])
        _copy_to_predictions(con, f"AND predictions.ingest_id = ?{within('t.trace_id', bounds)}", [ingest_id])
        # feedback that came before its prediction (an orphan until now)
        _copy_to_feedback(con, f"AND p.ingest_id = ? AND feedback.{on_prediction('ts')} IS NULL"
                          f"{within('feedback.trace_id', bounds)}", [ingest_id])  # fmt: skip
        if units:
            unit_sums.update(con, segments, *unit_sums.touched_by_predictions(ingest_id))
    if not units:  # the roles changed (other segments) or the table is of another shape: it alone is rebuilt
        unit_sums.rebuild(con, segments)
    _stamp(con, segments=segments)


def _last_before(con: duckdb.DuckDBPyConnection, table: str, ingest_id: int) -> int | None:
    last = con.execute(f"SELECT max(ingest_id) FROM {table} WHERE ingest_id < ?", [ingest_id]).fetchall()[0][0]
    return None if last is None else int(last)


def is_current(backend: Any, settings: Any) -> bool:
    """Whether the predictions' copies hold what ``settings`` asks for and match both streams now (else the
    caller groups the feedback itself)."""
    wanted = {"label_types": list(settings.label_types), "thumb_type": settings.thumb_type,
              "rating_type": settings.rating_type}  # fmt: skip
    return wanted == _DEFAULT_TYPES and copies_current(backend)


def kept_sums(backend: Any) -> tuple[bool, list[str] | None]:
    """(whether the predictions' copies of the per-trace sums may be read, the segment columns of the kept unit
    sums (:mod:`workbench.sources.unit_sums`) when they may be read too, else None): each current for both
    streams now."""
    if backend.name != "duckdb":
        return False, None
    copies, units, stamp = _check(backend.con, _state(backend.con))
    return copies, list(stamp["segments"]) if units else None


def kept_label_column() -> str:
    """The predictions' column holding each trace's latest label of :data:`KEPT_LABEL_KINDS`."""
    return hidden("automated_label")


def copies_current(backend: Any) -> bool:
    """Whether the predictions' copies of the kept sums match both streams now (a DuckDB store written by
    this build's ingest); else the caller reads the feedback itself."""
    return backend.name == "duckdb" and _check(backend.con, _state(backend.con))[0]


def on_predictions(con: Any, f: Any, window: Window | None = None, columns: Sequence[str] = ()) -> Any:
    """The feedback rows ``f`` whose prediction is in ``window`` (None: any prediction), each with its prediction's
    ``columns`` as ``p_<column>``: orphans (no prediction) are left out.

    A store written by this build's ingest keeps :data:`PREDICTION_COPIES` on every feedback row: when ``columns``
    are among them (and ``f`` still carries the copies), the rows are filtered on the copies with the window's own
    time condition (:func:`~workbench.sources.windowed.window_condition`) and nothing is joined. Elsewhere (a lake,
    Spark, an older store, a segment column, a window of model versions) ``f`` is joined with the window's
    predictions (semi-joined without ``columns``): the same rows. At 20M predictions (2 cores) the 6.7M outcome
    labels' join took ~1.6 s, their filter on the copies ~0.3 s.
    """
    named = [f"p_{c}" for c in columns]
    if any(c in f.columns for c in named):  # a feedback column of that name (a user's) gives way to the prediction's
        f = f.drop(*[c for c in named if c in f.columns])
    copies = [on_prediction(c) for c in PREDICTION_COPIES]
    by_time = window is None or not window.model_versions  # a version filter needs the prediction's version: a join
    kept = by_time and set(columns) <= set(PREDICTION_COPIES) and all(c in f.columns for c in copies)
    if kept and copies_current(con):
        condition = f[on_prediction("ts")].notnull()
        within = window_condition(f[on_prediction("ts")], None, window)
        rows = f.filter(condition if within is None else condition & within)
        return rows.mutate(**{f"p_{c}": rows[on_prediction(c)] for c in columns}) if columns else rows
    p = filtered_predictions(con, window)
    if not columns:
        return f.semi_join(p.select("trace_id"), "trace_id")
    return f.inner_join(p.select("trace_id", **{f"p_{c}": p[c] for c in columns}), "trace_id")


def orphans_of(con: Any, f: Any) -> Any:
    """The feedback rows ``f`` whose trace has no prediction in the store: those without the kept copy of their
    prediction's ts when the copies are current (:func:`on_predictions`), else an anti-join with every prediction."""
    if on_prediction("ts") in f.columns and copies_current(con):
        return f.filter(f[on_prediction("ts")].isnull())
    return f.anti_join(con.table("predictions").select("trace_id"), "trace_id")


@dataclass(frozen=True)
class TraceLabels:
    """Each trace's latest label of the chosen kinds, to put beside prediction rows (:meth:`on`).

    ``table`` (Ibis ``trace_id, label``) groups the labelled feedback by trace; ``column``, when set, is the
    predictions' copy of the same label kept by the ingest (:data:`LABEL`),
    read instead of the group and its join wherever the rows carry it (a window of the store's predictions, not
    a file). At 20M predictions (2 cores) the estimated accuracy's two joins took 4.9 s of its 7.3 s.
    """

    table: Any
    column: str | None = None

    def kept_in(self, *rows: Any) -> bool:
        """Whether every one of ``rows`` (Ibis tables) carries the kept copy."""
        return self.column is not None and all(self.column in r.columns for r in rows)

    def on(self, rows: Any, inner: bool = False) -> Any:
        """``rows`` (with ``trace_id``) with a ``label`` column: null without a label, or (``inner``) only the
        labelled rows."""
        if self.kept_in(rows):
            rows = rows.mutate(label=rows[self.column])
            return rows.filter(rows.label.notnull()) if inner else rows
        if "label" in rows.columns:  # a predictions column of that name (a feature): the feedback's label wins
            rows = rows.drop("label")
        return rows.inner_join(self.table, "trace_id") if inner else rows.left_join(self.table, "trace_id")


def labels_per_trace(con: Any, kinds: tuple[str, ...], within: Any = None) -> tuple[TraceLabels, str | None]:
    """(each trace's latest label from feedback of ``kinds``, a note or None; of labels at the same time the larger,
    :func:`latest_label`).

    Explicit corrections are chosen by users on wrong predictions, so they bias realised accuracy
    down; by default only automated outcome labels count. With none of those kinds, every labelled
    feedback counts and the note says so. ``within`` (a table with ``trace_id``): only those traces' labels
    are grouped (a window of a few days: the feedback matched with it first instead of every label grouped); the
    kinds are chosen on the whole feedback all the same, so a window's labels count as every other window's.
    When the kinds are the ingest's kept ones and its copies are current (a DuckDB store), the labels are read
    from the predictions' kept column instead (:class:`TraceLabels`).
    """
    f = con.table("feedback")
    labelled = f.filter(f.label.notnull())
    note = None
    kept = False
    if kinds:
        chosen = labelled.filter(labelled.kind.isin(list(kinds)))
        if chosen.count().execute() > 0:
            labelled = chosen
            kept = tuple(kinds) == KEPT_LABEL_KINDS and copies_current(con)
        else:
            note = f"no labelled feedback of kind {', '.join(kinds)}: labels from every kind are used"
    if within is not None:
        labelled = labelled.semi_join(within.select("trace_id"), "trace_id")
    table = labelled.group_by("trace_id").aggregate(label=latest_label(labelled))
    return TraceLabels(table, kept_label_column() if kept else None), note
