"""The per-trace feedback summary the ingest keeps (workbench.sources.trace_feedback): after any sequence of
ingests it equals grouping the feedback now; the audit gives the same numbers with it as without; it is not
trusted when stale (feedback changed behind the ingest, other label types) and is rebuilt by the next ingest;
a failed ingest leaves it as it was."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

import duckdb
import ibis
import numpy as np
import pandas as pd
import pytest

from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.fairness.audit import audit_store
from workbench.ingest.pipeline import ingest_frame, ingest_frames
from workbench.sources import experiment, trace_feedback, unit_sums
from workbench.sources.store import Store
from workbench.sources.store_queries import store_summary
from workbench.stats.fairness import FairnessSettings

QUICK = FairnessSettings(bootstrap_resamples=50)
COUNT_COLUMNS = ["trace_id", "n_labels", "n_positive", "thumbs", "thumbs_up", "ratings", "rating_sum", "rating_sumsq"]
AB_COUNTS = ["ab_click_n", "ab_click_up", "ab_correction_rows", "ab_dwell_n", "ab_rating_n", "ab_thumb_n",
             "ab_thumb_up"]  # fmt: skip
AB_SUMS = ["ab_click_sum", "ab_dwell_sum", "ab_rating_sum"]
AB_VALUES = ["ab_dwell_values", "ab_rating_values"]
ROWS = ["n_feedback"]  # every feedback row of the trace, whatever its type
LABEL = ["automated_label"]  # the label of the trace's newest labelled row of the automated kind
KEPT_COLUMNS = [*COUNT_COLUMNS, *ROWS, *LABEL, *AB_COUNTS, *AB_SUMS, *AB_VALUES]


def _predictions(start: int, stop: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = stop - start
    return pd.DataFrame({
        "trace_id": [f"t{i}" for i in range(start, stop)],
        "ts": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 40 * 86400, n), unit="s"),
        "model_version": rng.choice(["v1", "v2"], n),
        "prediction": rng.integers(0, 2, n),
        "score": rng.random(n),
        "region": rng.choice(["north", "south", "east", None], n),
        "arm": rng.choice(["a", "b"], n), "unit_id": [f"u{i % 300}" for i in range(start, stop)],
    })  # fmt: skip


def _feedback(traces: np.ndarray, seed: int) -> pd.DataFrame:
    """Corrections with labels, thumbs (some with a label too), ratings and dwell times (some without a value),
    clicks."""
    rng = np.random.default_rng(seed)
    n = len(traces)
    kind = rng.choice(["correction", "thumb", "rating", "click", "dwell"], n, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    value = np.where(kind == "rating", rng.integers(1, 6, n), rng.integers(0, 2, n)).astype(float)
    value = np.where(kind == "dwell", np.round(rng.gamma(2.0, 20.0, n), 1), value)
    value[(kind == "rating") & (rng.random(n) < 0.2)] = np.nan
    value[(kind == "dwell") & (rng.random(n) < 0.2)] = np.nan
    label = np.where((kind == "correction") | ((kind == "thumb") & (rng.random(n) < 0.3)), rng.integers(0, 2, n), -1)
    return pd.DataFrame({
        "trace_id": [f"t{i}" for i in traces],
        "ts": pd.Timestamp("2026-02-15", tz="UTC") + pd.to_timedelta(rng.integers(0, 86400 * 5, n), unit="s"),
        "kind": rng.choice(["explicit", "automated"], n, p=[0.6, 0.4]),  # drawn last: the other columns as before
        "type": kind,
        "value": value,
        "label": pd.array(np.where(label < 0, None, label), dtype="Int8"),
    })  # fmt: skip


def _build(tmp_path: Path) -> Store:
    """Predictions in two parts; feedback in three batches: orphans before their predictions, late and
    conflicting labels for traces that already had some, and a batch repeated whole (all duplicates)."""
    store = Store(tmp_path / "kept.duckdb")
    rng = np.random.default_rng(5)
    ingest_frame(store, _predictions(0, 1500, 1), "predictions")
    first = _feedback(rng.integers(0, 2000, 1500), 2)  # traces 1500–1999 are orphans for now
    ingest_frame(store, first, "feedback")
    ingest_frame(store, _predictions(1500, 2000, 3), "predictions")
    ingest_frame(store, _feedback(rng.integers(0, 800, 900), 4), "feedback")  # late labels, conflicts
    ingest_frame(store, first, "feedback")  # every row a duplicate: nothing lands
    return store


def _kept(store: Store) -> pd.DataFrame:
    with store.connect(read_only=True) as con:
        frame = con.execute(f"SELECT * FROM {trace_feedback.TABLE}").df()
    return frame[KEPT_COLUMNS].sort_values("trace_id").reset_index(drop=True)


def _grouped_now(store: Store, settings: FairnessSettings | None = None) -> pd.DataFrame:
    """The reference: per_trace_counts over the feedback as it is now (Ibis, not the kept table)."""
    s = settings or FairnessSettings()
    with store.ibis() as con:
        expr = trace_feedback.per_trace_counts(
            con.table("feedback"), s.label_types, s.thumb_type, s.rating_type, experiment=True
        )
        frame = expr.execute()
    return frame[KEPT_COLUMNS].sort_values("trace_id").reset_index(drop=True)


def _by_hand(store: Store) -> pd.DataFrame:
    """The same counts in pandas from the raw feedback rows (an independent reference)."""
    with store.connect(read_only=True) as con:
        f = con.execute("SELECT trace_id, ts, kind, type, value, label FROM feedback").df()
    f["is_label"] = f["label"].notna()
    f["is_thumb"] = (f["type"] == "thumb") & f["value"].notna()
    f["is_rating"] = (f["type"] == "rating") & f["value"].notna()
    ab_types = ["thumb", "click", "correction", "rating", "dwell"]  # the A/B metrics' feedback types
    f["pos"] = np.where(f["is_label"], f["label"].fillna(0).astype(int), 0)
    f["up"] = f["is_thumb"] & (f["value"] > 0)
    f["r"] = np.where(f["is_rating"], f["value"], np.nan)
    g = f.groupby("trace_id")
    out = pd.DataFrame({
        "n_labels": g["is_label"].sum(), "n_positive": g["pos"].sum(), "thumbs": g["is_thumb"].sum(),
        "thumbs_up": g["up"].sum(), "ratings": g["is_rating"].sum(),
        "rating_sum": g["r"].sum(min_count=1), "rating_sumsq": (f["r"] ** 2).groupby(f["trace_id"]).sum(min_count=1),
        "n_feedback": g.size(),
    })  # fmt: skip
    automated = f[f["is_label"] & (f["kind"] == "automated")].sort_values("ts")
    out["automated_label"] = automated.groupby("trace_id")["label"].last().reindex(out.index)
    for t in ab_types:
        of_type = f["type"] == t
        with_value = of_type & f["value"].notna()
        out[f"ab_{t}_n"] = with_value.groupby(f["trace_id"]).sum()
        out[f"ab_{t}_up"] = (with_value & (f["value"] > 0)).groupby(f["trace_id"]).sum()
        out[f"ab_{t}_rows"] = of_type.groupby(f["trace_id"]).sum()
        out[f"ab_{t}_sum"] = f["value"].where(of_type).groupby(f["trace_id"]).sum(min_count=1)
        out[f"ab_{t}_values"] = f["value"].where(with_value).groupby(f["trace_id"]).agg(_values)
    return out.reset_index()[KEPT_COLUMNS].sort_values("trace_id").reset_index(drop=True)


def _values(values: pd.Series) -> list[float] | None:
    """The non-missing values, sorted (None when there are none, as the engine's list aggregate gives)."""
    kept = sorted(float(v) for v in values if v == v)
    return kept or None


def _same_counts(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a["trace_id"]) == list(b["trace_id"])
    for column in [*COUNT_COLUMNS[1:6], *ROWS, *AB_COUNTS]:
        assert a[column].astype("int64").tolist() == b[column].astype("int64").tolist(), column
    for column in LABEL:  # null: no automated label
        assert a[column].astype("Int64").fillna(-1).tolist() == b[column].astype("Int64").fillna(-1).tolist(), column
    for column in [*COUNT_COLUMNS[6:], *AB_SUMS]:
        np.testing.assert_allclose(a[column].astype(float), b[column].astype(float), rtol=1e-12, equal_nan=True)
    for column in AB_VALUES:
        assert [_sorted(v) for v in a[column]] == [_sorted(v) for v in b[column]], column


def _sorted(values: object) -> list[float] | None:
    """A list cell as a sorted list; None for a missing one (None, NaN or pandas' NA, by reader)."""
    return None if values is None or not hasattr(values, "__len__") else sorted(float(v) for v in values)


def _is_current(store: Store, settings: FairnessSettings | None = None) -> bool:
    with store.ibis() as con:
        return trace_feedback.is_current(con, settings or FairnessSettings())


def _copies_match(store: Store) -> None:
    """Every prediction row carries exactly its trace's kept counts (null: no such feedback)."""
    hidden = ", ".join(f"p.{experiment.hidden(c)} AS {c}" for c in KEPT_COLUMNS[1:])
    with store.connect(read_only=True) as con:
        rows = con.execute(f"SELECT p.trace_id, {hidden} FROM predictions p").df()
    rows = rows.sort_values("trace_id").reset_index(drop=True)
    expected = _grouped_now(store)
    with_feedback = rows[rows["n_labels"].notna()].reset_index(drop=True)
    _same_counts(with_feedback, expected[expected["trace_id"].isin(rows["trace_id"])].reset_index(drop=True))
    assert rows["n_labels"].isna().sum() == (~rows["trace_id"].isin(expected["trace_id"])).sum()
    _feedback_copies_match(store)
    with store.connect(read_only=True) as con:  # each prediction's calibration fold: MD5's first 16 bits mod 10
        folds = con.execute(f"SELECT trace_id, {experiment.hidden('fold')} FROM predictions").fetchall()
    assert folds and all(f == int(hashlib.md5(t.encode()).hexdigest()[:4], 16) % 10 for t, f in folds)


def _feedback_copies_match(store: Store) -> None:
    """Every feedback row carries its prediction's ts and prediction (null: no prediction), as a join in pandas
    finds them."""
    copies = ", ".join(f"{trace_feedback.on_prediction(c)} AS {c}" for c in ("ts", "prediction"))
    with store.connect(read_only=True) as con:
        rows = con.execute(f"SELECT trace_id, {copies} FROM feedback").df()
        p = con.execute("SELECT trace_id, ts, prediction FROM predictions").df()
    expected = rows[["trace_id"]].merge(p, on="trace_id", how="left")
    assert len(expected) == len(rows) and rows["ts"].notna().any()
    for column in ("ts", "prediction"):
        pd.testing.assert_series_equal(rows[column], expected[column], check_dtype=False, check_names=False)


def test_after_a_sequence_of_ingests_the_kept_table_equals_the_feedback_grouped_now(tmp_path: Path) -> None:
    store = _build(tmp_path)
    assert _is_current(store)
    kept = _kept(store)
    _same_counts(kept, _grouped_now(store))
    _copies_match(store)  # the orphans' predictions, ingested after their feedback, got their counts too
    _same_counts(kept, _by_hand(store))
    # the sequence did exercise what the table must get right
    assert (kept["n_labels"] >= 2).any() and ((kept["n_positive"] > 0) & (kept["n_positive"] < kept["n_labels"])).any()
    assert kept["trace_id"].isin([f"t{i}" for i in range(1500, 2000)]).any()  # the orphans' feedback is there
    assert (kept["n_labels"] == 0).any()  # a trace with only thumbs or ratings
    automated = kept["automated_label"]
    assert automated.notna().any() and automated.isna().any() and (kept["n_labels"] > automated.notna()).any()
    with store.connect(read_only=True) as con:
        per_ingest = con.execute("SELECT table_name, accepted FROM ingests ORDER BY ingest_id").fetchall()
    assert per_ingest[-1] == ("feedback", 0)


@pytest.mark.parametrize("policy", ["majority", "drop"])
def test_the_audit_gives_the_same_numbers_with_the_kept_table_as_from_the_feedback(
    tmp_path: Path, policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _build(tmp_path)
    settings = FairnessSettings(bootstrap_resamples=50, conflict_policy=policy, min_positives=1, min_negatives=1)
    kept = audit_store(store, ["region"], settings=settings)
    monkeypatch.setattr(trace_feedback, "is_current", lambda *_: False)
    grouped = audit_store(store, ["region"], settings=settings)
    assert kept.groups == grouped.groups
    assert kept.disparities == grouped.disparities
    assert kept.verdict == grouped.verdict
    assert sum(g["n"] for g in kept.groups) == 2000
    labelled = sum(g["n_labelled"] for g in kept.groups)
    assert 0 < labelled < 2000


def test_feedback_changed_behind_the_ingest_makes_the_table_stale_until_the_next_ingest(tmp_path: Path) -> None:
    store = _build(tmp_path)
    with store.connect(read_only=False) as con:
        con.execute(
            "INSERT INTO feedback (trace_id, ts, kind, type, value, label, ingest_id) "
            "VALUES ('t3', now(), 'explicit', 'correction', 1, 1, NULL)"
        )
    assert not _is_current(store)  # one more row than the stamp: not trusted, the audit groups the feedback
    audit_store(store, ["region"], settings=QUICK)  # runs on the fallback
    ingest_frame(store, _feedback(np.array([7, 8]), 9), "feedback")
    assert _is_current(store)  # the next ingest rebuilt it whole, the row added behind its back included
    _same_counts(_kept(store), _grouped_now(store))
    with store.connect(read_only=False) as con:  # same row count, other rows: the last ingest id tells
        con.execute("DELETE FROM feedback WHERE trace_id = 't3' AND ingest_id IS NULL")
        con.execute(
            "INSERT INTO feedback (trace_id, ts, kind, type, value, label, ingest_id) "
            "VALUES ('t4', now(), 'explicit', 'correction', 1, 1, 999)"
        )
    assert not _is_current(store)
    ingest_frame(store, _feedback(np.array([7]), 10), "feedback")
    assert _is_current(store)
    with store.connect(read_only=False) as con:  # every feedback row of one trace removed behind the ingest's back
        gone = con.execute("SELECT min(trace_id) FROM feedback WHERE trace_id IN (SELECT trace_id FROM predictions) "
                           "AND trace_id <> 't7'").fetchone()[0]  # fmt: skip
        con.execute("DELETE FROM feedback WHERE trace_id = ?", [gone])
    ingest_frame(store, _feedback(np.array([7]), 11), "feedback")
    assert _is_current(store)  # rebuilt whole: the trace's copies cleared, every other one written again
    _copies_match(store)
    with store.connect(read_only=True) as con:
        kept = con.execute(f"SELECT {experiment.hidden('n_feedback')} FROM predictions WHERE trace_id = ?", [gone])
        assert kept.fetchall() == [(None,)]
    with store.connect(read_only=False) as con:  # a prediction removed behind the ingest's back: its feedback's copies
        lost = con.execute("SELECT min(trace_id) FROM feedback WHERE trace_id IN (SELECT trace_id FROM predictions) "
                           "AND trace_id <> 't7'").fetchone()[0]  # fmt: skip
        con.execute("DELETE FROM predictions WHERE trace_id = ?", [lost])
    ingest_frame(store, _feedback(np.array([7]), 12), "feedback")
    assert _is_current(store)
    _copies_match(store)  # rebuilt whole: the lost prediction's feedback rows carry nulls again
    with store.connect(read_only=True) as con:
        copied = con.execute(f"SELECT {trace_feedback.on_prediction('ts')} FROM feedback WHERE trace_id = ?", [lost])
        assert {r[0] for r in copied.fetchall()} == {None}
    with store.connect(read_only=False) as con:  # a prediction written behind the ingest's back
        con.execute("INSERT INTO predictions (trace_id, ts, model_version, prediction) VALUES ('x1', now(), 'v1', 1)")
    assert not _is_current(store)
    with store.connect(read_only=False) as con:  # a second prediction of a trace with feedback, behind its back
        con.execute("INSERT INTO predictions (trace_id, ts, model_version, prediction) "
                    "VALUES ('t7', TIMESTAMPTZ '2026-01-02 00:00:00+00', 'v1', 0)")  # fmt: skip
    ingest_frame(store, _feedback(np.array([8]), 13), "feedback")
    assert not _is_current(store)  # rebuilt, but no copy is written: a copy would hold one prediction, a join two
    with store.ibis() as con:
        assert "JOIN" in str(con.compile(trace_feedback.on_predictions(con, con.table("feedback"), None, ("ts",))))


def test_the_copies_on_the_predictions_are_no_feature_and_no_user_column_may_take_their_names(tmp_path: Path) -> None:
    from workbench.drift.store import store_features

    store = _build(tmp_path)
    with store.ibis() as con:
        numeric, categorical = store_features(con)
    assert not [c for c in numeric + categorical if c.startswith(experiment.HIDDEN_PREFIX)]
    assert "region" in categorical
    clash = _predictions(5000, 5003, 13).assign(**{experiment.hidden("thumbs"): 1})
    with pytest.raises(InputError, match="reserved prefix"):
        ingest_frame(store, clash, "predictions")
    with pytest.raises(InputError, match="no column '__fb_n_labels'"):
        audit_store(store, [experiment.hidden("n_labels")], settings=QUICK)
    with store.ibis() as con, pytest.raises(InputError, match="unknown feature '__fb_thumbs'"):
        store_features(con, [experiment.hidden("thumbs")])
    with pytest.raises(InputError, match="reserved prefix"):  # the feedback carries copies too (its prediction's)
        ingest_frame(store, _feedback(np.array([1]), 14).assign(__fb_note="x"), "feedback")
    with pytest.raises(InputError, match="reserved prefix"):  # in any case: the store matches names without case
        ingest_frame(store, _feedback(np.array([1]), 14).assign(__FB_p_ts="x"), "feedback")


def test_an_attribute_named_like_a_count_is_audited_through_the_join(tmp_path: Path) -> None:
    store = _build(tmp_path)
    with store.connect(read_only=False) as con:
        con.execute("ALTER TABLE predictions ADD COLUMN n_labels VARCHAR")
        con.execute("UPDATE predictions SET n_labels = region")
        trace_feedback.rebuild(con)  # the ALTER/UPDATE kept the row count: stamp again, as an ingest would
    assert _is_current(store)
    by_count_name = audit_store(store, ["n_labels"], settings=QUICK)
    by_region = audit_store(store, ["region"], settings=QUICK)
    assert [g["confusion"] for g in by_count_name.groups] == [g["confusion"] for g in by_region.groups]


def test_a_users_column_with_the_reserved_prefix_from_an_older_build_is_left_alone(tmp_path: Path) -> None:
    store = Store(tmp_path / "old.duckdb")
    ingest_frame(store, _predictions(0, 200, 1), "predictions")
    with store.connect(read_only=False) as con:  # as an older build let it in, before any stamp
        con.execute("DROP TABLE trace_feedback")
        con.execute("DELETE FROM meta WHERE key = 'trace_feedback'")
        for count in trace_feedback.KEPT:
            con.execute(f"ALTER TABLE predictions DROP COLUMN {experiment.hidden(count)}")
        con.execute("ALTER TABLE predictions ADD COLUMN __fb_n_labels VARCHAR")
        con.execute("UPDATE predictions SET __fb_n_labels = 'mine'")
    ingest_frame(store, _feedback(np.arange(0, 200), 15), "feedback")
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT DISTINCT __fb_n_labels FROM predictions").fetchall() == [("mine",)]
    assert not _is_current(store)
    assert sum(g["n_labelled"] for g in audit_store(store, ["region"], settings=QUICK).groups) > 0


def test_other_label_types_or_feedback_types_do_not_use_the_kept_table(tmp_path: Path) -> None:
    store = _build(tmp_path)
    assert not _is_current(store, FairnessSettings(label_types=("correction",)))
    assert not _is_current(store, FairnessSettings(thumb_type="like"))
    audit = audit_store(
        store, ["region"], settings=FairnessSettings(bootstrap_resamples=50, label_types=("correction",))
    )
    with store.connect(read_only=True) as con:  # traces whose correction labels have a majority (ties dropped)
        expected = con.execute(
            "SELECT count(*) FROM (SELECT trace_id, count(*) n, sum(label) pos FROM feedback "
            "WHERE type = 'correction' AND label IS NOT NULL GROUP BY trace_id) l "
            "JOIN predictions USING (trace_id) WHERE 2 * pos <> n"
        ).fetchall()[0][0]
    assert sum(g["n_labelled"] for g in audit.groups) == expected > 0
    every_type = audit_store(store, ["region"], settings=QUICK)
    assert sum(g["n_labelled"] for g in every_type.groups) != expected  # thumbs' labels too


def test_a_failed_ingest_leaves_the_table_and_its_stamp_as_they_were(tmp_path: Path) -> None:
    """The kept table, the copies on the predictions and the unit sums are as before a failed ingest."""
    store = _build(tmp_path)
    before = _kept(store)
    with store.connect(read_only=True) as con:
        copies = con.execute("SELECT * FROM predictions ORDER BY trace_id").df()
        units = con.execute(f"SELECT * FROM {unit_sums.TABLE} ORDER BY unit, arm").df()
    assert len(units) > 300  # units in both arms
    good = _feedback(np.array([1, 2, 3]), 11)
    with pytest.raises(InputError):
        ingest_frames(store, [(good, "feedback"), (pd.DataFrame({"nothing": []}), "feedback")])
    assert _is_current(store)
    _same_counts(_kept(store), before)
    with store.connect(read_only=True) as con:
        pd.testing.assert_frame_equal(con.execute("SELECT * FROM predictions ORDER BY trace_id").df(), copies)
        pd.testing.assert_frame_equal(con.execute(f"SELECT * FROM {unit_sums.TABLE} ORDER BY unit, arm").df(), units)


def test_a_store_without_the_table_is_audited_from_the_feedback_and_the_next_ingest_builds_it(tmp_path: Path) -> None:
    store = _build(tmp_path)
    with store.connect(read_only=False) as con:  # as a store written before the table existed
        con.execute(f"DROP TABLE {trace_feedback.TABLE}")
        con.execute("DELETE FROM meta WHERE key = 'trace_feedback'")
    assert not _is_current(store)
    assert audit_store(store, ["region"], settings=QUICK).groups
    ingest_frame(store, _feedback(np.array([10, 11, 12]), 12), "feedback")
    assert _is_current(store)
    _same_counts(_kept(store), _by_hand(store))


def test_the_kept_query_is_the_ibis_expression_compiled(tmp_path: Path) -> None:
    """counts_sql runs per_trace_counts' SQL: same rows as the Ibis expression on a DuckDB table; the kept label
    is the label of each trace's newest labelled row of the automated kind (by hand)."""
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    con.execute("CREATE TABLE feedback (trace_id VARCHAR, ts TIMESTAMPTZ, kind VARCHAR, type VARCHAR, value DOUBLE, "
                "label TINYINT)")  # fmt: skip
    rows = ["('a', '2026-01-01', 'explicit', 'thumb', 1, NULL)", "('a', '2026-01-02', 'automated', 'thumb', 0, 1)",
            "('b', '2026-01-01', 'automated', 'rating', NULL, NULL)", "('b', '2026-01-02', 'explicit', 'rating', 4, 0)",
            "('c', '2026-01-01', 'implicit', 'click', 1, NULL)",
            "('d', '2026-01-03', 'automated', 'correction', 1, 1)", "('d', '2026-01-05', 'automated', 'other', 0, 0)",
            "('e', '2026-01-02', 'automated', 'outcome', NULL, 1)",
            "('e', '2026-01-01', 'automated', 'outcome', NULL, 0)",
            "('e', '2026-01-09', 'explicit', 'correction', NULL, 0)",
            "('f', '2026-01-04', 'automated', 'outcome', NULL, 0)",
            "('f', '2026-01-04', 'automated', 'outcome', NULL, 1)",
            "('g', '2026-01-04', 'automated', 'outcome', NULL, 1)",
            "('g', '2026-01-04', 'automated', 'outcome', NULL, 0)"]  # fmt: skip
    con.execute(f"INSERT INTO feedback VALUES {', '.join(rows)}")
    got = con.execute(f"SELECT * FROM ({trace_feedback.counts_sql('feedback')}) ORDER BY trace_id").df()
    assert got["trace_id"].tolist() == ["a", "b", "c", "d", "e", "f", "g"]  # c: a click, kept for the A/B analysis
    assert got["n_labels"].tolist() == [1, 1, 0, 2, 3, 2, 2] and got["n_positive"].tolist() == [1, 0, 0, 1, 1, 1, 1]
    # d: its newest; e: not the later correction; f, g: two at the same time, the larger label whatever the order
    assert got["automated_label"].fillna(-1).tolist() == [1, -1, -1, 0, 1, 1, 1]
    assert got["thumbs"].tolist() == [2, 0, 0, 0, 0, 0, 0] and got["thumbs_up"].tolist() == [1, 0, 0, 0, 0, 0, 0]
    assert got["ratings"].tolist() == [0, 1, 0, 0, 0, 0, 0] and got["rating_sum"].iloc[1] == 4.0
    assert got["rating_sumsq"].iloc[1] == 16.0
    assert got["ab_thumb_n"].tolist() == [2, 0, 0, 0, 0, 0, 0] and got["ab_thumb_up"].tolist() == [1, 0, 0, 0, 0, 0, 0]
    assert got["ab_click_n"].tolist() == [0, 0, 1, 0, 0, 0, 0] and got["ab_click_sum"].iloc[2] == 1.0
    assert got["ab_correction_rows"].tolist() == [0, 0, 0, 1, 1, 0, 0]
    assert got["ab_rating_n"].tolist() == [0, 1, 0, 0, 0, 0, 0] and list(got["ab_rating_values"].iloc[1]) == [4.0]
    backend = ibis.duckdb.from_connection(con)
    expr = trace_feedback.per_trace_counts(backend.table("feedback"), experiment=True).order_by("trace_id")
    expected = expr.execute()[list(got.columns)]
    for column in ("ab_dwell_values", "ab_rating_values"):  # lists: compared as lists, not by pandas
        assert [_sorted(v) for v in expected.pop(column)] == [_sorted(v) for v in got.pop(column)]
    pd.testing.assert_frame_equal(expected, got, check_dtype=False)
    con.close()


def test_the_store_summary_counts_coverage_and_orphans_from_the_copies_as_the_joins_do(tmp_path: Path) -> None:
    """Coverage (any feedback, a label) and orphan feedback from the kept copies (one scan) equal a pandas count of
    the raw rows, and the join path (a stale stamp) gives the same; feedback of a type no count keeps (a "view"
    without value or label) still covers its prediction."""
    store = _build(tmp_path)
    views = pd.DataFrame({"trace_id": [f"t{i}" for i in range(1900, 2100)], "kind": "implicit", "type": "view",
                          "ts": pd.Timestamp("2026-03-01", tz="UTC"), "value": np.nan,
                          "label": pd.array([None] * 200, dtype="Int8")})  # fmt: skip
    ingest_frame(store, views, "feedback")  # traces 2000–2099 have no prediction: orphans
    assert _is_current(store)
    with store.connect(read_only=True) as con:
        p = con.execute("SELECT trace_id, ts FROM predictions").df()
        f = con.execute("SELECT trace_id, label FROM feedback").df()
    with_any = p["trace_id"].isin(f["trace_id"]).sum()
    with_label = p["trace_id"].isin(f.loc[f["label"].notna(), "trace_id"]).sum()
    orphans = (~f["trace_id"].isin(p["trace_id"])).sum()
    assert 0 < with_label < with_any < len(p) and orphans >= 100
    window = Window(start=dt.datetime(2026, 1, 10, tzinfo=dt.UTC), end=dt.datetime(2026, 1, 30, tzinfo=dt.UTC))
    inside = p[(p["ts"] >= window.start) & (p["ts"] < window.end)]
    expected = {
        None: (len(p), with_any, with_label),
        window: (len(inside), inside["trace_id"].isin(f["trace_id"]).sum(),
                 inside["trace_id"].isin(f.loc[f["label"].notna(), "trace_id"]).sum()),
    }  # fmt: skip
    stale = Store(tmp_path / "stale.duckdb")
    shutil.copy(store.path, stale.path)
    with stale.connect(read_only=False) as con:
        con.execute("DELETE FROM meta WHERE key = 'trace_feedback'")
    assert not _is_current(stale)
    for source in (store, stale):
        for scope, (n, any_, labelled) in expected.items():
            summary = store_summary(source, scope)
            assert summary.predictions == n
            assert summary.coverage_any == pytest.approx(any_ / n, rel=1e-12)
            assert summary.coverage_labelled == pytest.approx(labelled / n, rel=1e-12)
            assert summary.orphan_feedback == orphans


def test_each_ingest_reads_the_store_within_its_trace_ids_bounds_and_misses_no_row(tmp_path: Path) -> None:
    """An ingest's joins read only the stored rows between its rows' least and greatest trace id (``within``): the
    bounds' own ids, orphans whose prediction comes in a later batch, ids that sort between the batches' (``t5`` lies
    between ``t10`` and ``t99``) and ids with a quote all get their counts and copies as a grouping now finds them."""
    store = Store(tmp_path / "bounds.duckdb")
    rng = np.random.default_rng(11)
    ingest_frame(store, _predictions(0, 500, 1), "predictions")
    ingest_frame(store, _feedback(np.r_[0, 499, rng.integers(0, 500, 600), np.arange(900, 950)], 2), "feedback")
    ingest_frame(store, _predictions(500, 1000, 3), "predictions")  # the orphans t900–t949 get their counts
    ingest_frame(store, _feedback(np.r_[10, 99, rng.integers(10, 100, 200)], 4), "feedback")  # late labels
    quoted = _predictions(0, 20, 5).assign(trace_id=[f"q'{i}" for i in range(20)])
    ingest_frame(store, quoted, "predictions")
    ingest_frame(store, _feedback(np.arange(20), 6).assign(trace_id=[f"q'{i}" for i in range(20)]), "feedback")
    assert _is_current(store)
    kept = _kept(store)
    _same_counts(kept, _grouped_now(store))
    _same_counts(kept, _by_hand(store))
    _copies_match(store)
    assert {"t0", "t499", "t10", "t99", "t900", "q'0", "q'19"} <= set(kept["trace_id"])
    assert trace_feedback.within("x", ("a'b", "c")) == " AND x BETWEEN 'a''b' AND 'c'"
    assert trace_feedback.within("x", None) == ""
