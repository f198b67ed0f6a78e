"""Ingestion that loses nothing: each bad-input class, idempotence, atomicity and roles mapping."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import GOOD, PREDICTIONS_HEADER, ROOT, counts, write
from workbench.core.errors import InputError
from workbench.core.schema import Roles, TableRoles, parse_roles
from workbench.ingest import pipeline as ingest_module
from workbench.ingest.pipeline import ingest_file, ingest_files, ingest_frame
from workbench.sources.store import Store

GOOD_PREDICTIONS = GOOD


def quarantine_rows(store) -> list[tuple]:
    with store.connect() as con:
        return con.execute("SELECT row_number, reason, raw FROM quarantine ORDER BY ingest_id, row_number").fetchall()


def test_clean_file_is_accepted_with_types_coerced(store, tmp_path):
    result = ingest_file(store, write(tmp_path / "p.csv", GOOD_PREDICTIONS))
    assert (result.table, result.accepted, result.duplicates, result.quarantined) == ("predictions", 3, 0, 0)
    with store.connect() as con:
        rows = con.execute(
            "SELECT trace_id, ts, prediction, score, amount, country, age_band FROM predictions ORDER BY trace_id"
        ).fetchall()
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'predictions'").fetchall())  # fmt: skip
    assert rows[1][1].isoformat() == "2026-01-01T09:00:00+00:00"  # +02:00 converted to UTC
    assert rows[0][1].isoformat() == "2026-01-01T10:00:00+00:00"  # naive read as UTC
    assert rows[0][2:5] == (1, 0.91, 10.5)
    assert rows[1][4] is None  # a missing feature value is data, not an error
    assert rows[2][6] is None  # so is a missing sensitive value
    assert types["amount"] == "DOUBLE" and types["country"] == "VARCHAR"


def test_each_bad_row_class_is_quarantined_with_its_reason(store, tmp_path):
    path = write(
        tmp_path / "bad.csv",
        f"""
        {PREDICTIONS_HEADER}
        ok1,2026-01-01 10:00,v1,1,0.9,1,DE,18-25
        ,2026-01-01 10:00,v1,1,0.9,1,DE,18-25
        bad_ts,yesterday,v1,1,0.9,1,DE,18-25
        no_ts,,v1,1,0.9,1,DE,18-25
        bad_pred,2026-01-01 10:00,v1,2,0.9,1,DE,18-25
        text_pred,2026-01-01 10:00,v1,yes,0.9,1,DE,18-25
        bad_score,2026-01-01 10:00,v1,1,1.5,1,DE,18-25
        nan_score,2026-01-01 10:00,v1,1,nan,1,DE,18-25
        no_version,2026-01-01 10:00,,1,0.9,1,DE,18-25
        ok1,2026-01-01 10:00,v1,1,0.9,1,DE,18-25
        ok1,2026-01-01 10:00,v1,0,0.2,1,DE,18-25
        ok2,2026-01-01 10:00,v1,0,,2,FR,26-35
        """,
    )
    result = ingest_file(store, path)
    assert (result.accepted, result.duplicates, result.quarantined) == (2, 1, 9)
    assert result.reasons == {
        "duplicate trace_id in file with other values": 1,
        "missing model_version": 1,
        "missing trace_id": 1,
        "missing ts": 1,
        "prediction is not 0 or 1": 1,
        "prediction is not a number": 1,
        "score is not a number": 1,
        "score is outside [0, 1]": 1,
        "ts is not a timestamp": 1,
    }
    quarantined = quarantine_rows(store)
    assert [r[0] for r in quarantined] == [2, 3, 4, 5, 6, 7, 8, 9, 11]  # 1-based data rows, file order
    raw = json.loads(quarantined[1][2])
    assert raw["trace_id"] == "bad_ts" and raw["ts"] == "yesterday"  # the raw row, as it was in the file
    assert counts(store)["predictions"] == 2


def test_reingesting_the_same_file_adds_nothing(store, tmp_path):
    path = write(tmp_path / "p.csv", GOOD_PREDICTIONS + "bad,never,v1,1,0.5,1,DE,18-25\n")
    first = ingest_file(store, path)
    before = counts(store)
    second = ingest_file(store, path)
    assert (first.accepted, first.quarantined) == (3, 1)
    assert (second.accepted, second.duplicates, second.quarantined) == (0, 3, 1)
    after = counts(store)
    assert after["predictions"] == before["predictions"] == 3
    assert after["quarantine"] == before["quarantine"] == 1  # the same rejected row is not stored twice


def test_same_trace_id_with_other_values_than_the_store_is_quarantined(store, tmp_path):
    ingest_file(store, write(tmp_path / "a.csv", GOOD_PREDICTIONS))
    changed = write(tmp_path / "b.csv", f"{PREDICTIONS_HEADER}\np1,2026-01-01 10:00:00,v1,0,0.11,10.5,DE,18-25\n")
    result = ingest_file(store, changed)
    assert (result.accepted, result.duplicates, result.quarantined) == (0, 0, 1)
    assert result.reasons == {"trace_id already in store with other values": 1}


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "the file is empty"),
        (b"trace_id,ts,model_version,prediction\n", "header.csv", "has no rows"),
        (b"\xff\xfe\xfa bad bytes \xff\n\x80\x81,\xfe\n", "latin.csv", "not valid UTF-8"),
        (b"trace_id,ts\nx,2026-01-01\n", "missing.csv", "cannot tell predictions from feedback"),
        (b"not parquet at all", "x.parquet", "not a readable Parquet file"),
        (b"{not json\n", "x.jsonl", "not JSON Lines"),
        (b"a,b\n1,2\n", "x.xlsx", "unknown file type"),
    ],
)
def test_unreadable_files_are_refused_and_the_store_is_unchanged(store, tmp_path, content, name, message):
    ingest_file(store, write(tmp_path / "seed.csv", GOOD_PREDICTIONS))
    before = counts(store)
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        ingest_file(store, path)
    assert counts(store) == before


def test_missing_required_column_is_refused_naming_it(store, tmp_path):
    path = write(tmp_path / "p.csv", "trace_id,ts,prediction\nx,2026-01-01,1\n")
    with pytest.raises(InputError, match=r"missing required column 'model_version' \(role model_version\)"):
        ingest_file(store, path, table="predictions")
    assert not store.exists() or counts(store)["predictions"] == 0


def test_feedback_rules_kind_label_value_and_duplicates(store, tmp_path):
    path = write(
        tmp_path / "fb.csv",
        """
        trace_id,ts,kind,type,value,label
        p1,2026-01-01 10:05,explicit,thumb,1,
        p1,2026-01-01 10:05,explicit,thumb,1,
        p2,2026-01-01 10:06,Implicit,click,0,
        p3,2026-01-01 10:07,survey,thumb,1,
        p4,2026-01-01 10:08,automated,outcome,1,2
        p5,2026-01-01 10:09,implicit,dwell,abc,
        p6,2026-01-01 10:10,automated,outcome,0,0
        """,
    )
    result = ingest_file(store, path)
    assert result.table == "feedback"
    assert (result.accepted, result.duplicates, result.quarantined) == (3, 1, 3)
    assert result.reasons == {
        "kind is not one of explicit, implicit, automated": 1,
        "label is not 0 or 1": 1,
        "value is not a number": 1,
    }
    with store.connect() as con:
        kinds = sorted(r[0] for r in con.execute("SELECT kind FROM feedback").fetchall())
    assert kinds == ["automated", "explicit", "implicit"]  # kind is case-normalised
    again = ingest_file(store, path)
    assert (again.accepted, again.duplicates) == (0, 4)


def test_orphan_feedback_is_kept_and_joins_when_its_prediction_arrives(store, tmp_path):
    ingest_file(
        store, write(tmp_path / "fb.csv", "trace_id,ts,kind,type,value,label\np9,2026-01-02,automated,outcome,1,1\n")
    )
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM feedback").fetchone()[0] == 1
    ingest_file(store, write(tmp_path / "p.csv", f"{PREDICTIONS_HEADER}\np9,2026-01-01,v1,1,0.8,1,DE,18-25\n"))
    with store.connect() as con:
        joined = con.execute(
            "SELECT p.prediction, f.label FROM predictions p JOIN feedback f USING (trace_id)"
        ).fetchall()
    assert joined == [(1, 1)]


def test_roles_file_maps_the_users_column_names(store, tmp_path):
    roles = parse_roles(
        """
        [predictions]
        trace_id = "request_id"
        ts = "created_at"
        model_version = "model"
        prediction = "pred"
        score = "proba"
        unit_id = "user_id"
        features = ["amount", "zip"]
        categorical = ["zip"]
        sensitive = ["region"]
        [feedback]
        trace_id = "request_id"
        ts = "at"
        """
    )
    preds = write(
        tmp_path / "p.csv",
        """
        request_id,created_at,model,pred,proba,user_id,amount,zip,region,note
        r1,2026-01-01,m1,1,0.7,u1,3.5,10115,north,hello
        r2,2026-01-01,m1,0,0.2,u2,4.0,75001,south,
        """,
    )
    fb = write(tmp_path / "fb.csv", "request_id,at,kind,type,value,label\nr1,2026-01-02,automated,outcome,1,1\n")
    results = ingest_files(store, [preds, fb], roles=roles)
    assert [(r.table, r.accepted) for r in results] == [("predictions", 2), ("feedback", 1)]
    with store.connect() as con:
        row = con.execute("SELECT trace_id, model_version, prediction, score, unit_id, zip FROM predictions "
                          "ORDER BY trace_id").fetchone()  # fmt: skip
        stored = json.loads(con.execute("SELECT value FROM meta WHERE key = 'roles'").fetchone()[0])
    assert row == ("r1", "m1", 1, 0.7, "u1", "10115")  # zip declared categorical: kept as text
    assert stored["predictions"]["features"] == ["amount", "zip"]
    assert stored["predictions"]["categorical"] == ["zip"]
    assert stored["predictions"]["sensitive"] == ["region"]


def test_roles_naming_a_column_the_file_lacks_is_refused(store, tmp_path):
    roles = Roles(predictions=TableRoles(sensitive=["gender"]))
    with pytest.raises(InputError, match="the roles name column 'gender'"):
        ingest_file(store, write(tmp_path / "p.csv", GOOD_PREDICTIONS), roles=roles)


def test_default_features_are_every_column_without_another_role(store, tmp_path):
    ingest_file(store, write(tmp_path / "p.csv", GOOD_PREDICTIONS), roles=Roles(TableRoles(sensitive=["age_band"])))
    with store.connect() as con:
        stored = json.loads(con.execute("SELECT value FROM meta WHERE key = 'roles'").fetchone()[0])["predictions"]
    assert stored["features"] == ["amount", "country"]
    assert stored["categorical"] == ["country"]  # inferred from the type


def test_mostly_numeric_text_column_quarantines_the_non_numbers(store, tmp_path):
    lines = [PREDICTIONS_HEADER] + [f"t{i},2026-01-01,v1,1,0.5,{i},DE,18-25" for i in range(40)]
    lines.append("t40,2026-01-01,v1,1,0.5,lots,DE,18-25")
    result = ingest_file(store, write(tmp_path / "p.csv", "\n".join(lines)))
    assert (result.accepted, result.quarantined) == (40, 1)
    assert result.reasons == {"column 'amount' is not a number": 1}


@pytest.mark.parametrize("fmt", ["csv.gz", "parquet", "parquet.gz", "jsonl", "jsonl.gz"])
def test_every_format_reads_the_same_rows(store, tmp_path, fmt):
    frame = pd.DataFrame(
        {
            "trace_id": ["a", "b", "c"],
            "ts": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 11:00", "2026-01-02 00:00"], utc=True),
            "model_version": ["v1", "v1", "v2"],
            "prediction": [1, 0, 1],
            "score": [0.9, 0.1, 1.2],
            "amount": [1.0, None, 3.0],
        }
    )
    path = tmp_path / f"p.{fmt}"
    if fmt.startswith("parquet"):
        pq.write_table(pa.Table.from_pandas(frame), tmp_path / "p.parquet")
        if fmt.endswith(".gz"):
            path.write_bytes(gzip.compress((tmp_path / "p.parquet").read_bytes()))
    elif fmt.startswith("jsonl"):
        text = frame.assign(ts=frame.ts.astype(str)).to_json(orient="records", lines=True)
        path.write_bytes(gzip.compress(text.encode()) if fmt.endswith(".gz") else text.encode())
    else:
        path.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    result = ingest_file(store, path)
    assert (result.accepted, result.quarantined) == (2, 1)
    assert result.reasons == {"score is outside [0, 1]": 1}


def test_a_failure_mid_ingest_leaves_the_store_unchanged(store, tmp_path, monkeypatch):
    ingest_file(store, write(tmp_path / "seed.csv", GOOD_PREDICTIONS))
    before = counts(store)

    def fail() -> None:
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(ingest_module, "_after_insert_hook", fail)
    more = write(
        tmp_path / "more.csv", f"{PREDICTIONS_HEADER}\nq1,2026-01-03,v1,1,0.5,1,DE,18-25\nq2,x,v1,1,0.5,1,DE,1\n"
    )
    with pytest.raises(RuntimeError, match="injected"):
        ingest_file(store, more)
    assert counts(store) == before


def test_one_unreadable_file_among_several_lands_none(store, tmp_path):
    good = write(tmp_path / "good.csv", GOOD_PREDICTIONS)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        ingest_files(store, [good, empty])
    assert counts(store)["predictions"] == 0


def test_a_killed_ingest_leaves_the_store_unchanged(store, tmp_path):
    ingest_file(store, write(tmp_path / "seed.csv", GOOD_PREDICTIONS))
    before = counts(store)
    lines = [PREDICTIONS_HEADER] + [f"k{i},2026-01-05,v1,1,0.5,{i},DE,18-25" for i in range(5000)]
    big = write(tmp_path / "big.csv", "\n".join(lines))
    marker = tmp_path / "inserted"
    script = (
        "import pathlib, time, sys\n"
        "from workbench.ingest import pipeline as ingest\n"
        "from workbench.sources.store import Store\n"
        f"ingest._after_insert_hook = lambda: (pathlib.Path({str(marker)!r}).touch(), time.sleep(60))\n"
        f"ingest.ingest_file(Store({str(store.path)!r}), {str(big)!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, "the ingest process ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert counts(store) == before


def test_frames_ingest_through_the_same_rules(store):
    frame = pd.DataFrame(
        {"trace_id": ["a", "a", None], "ts": ["2026-01-01"] * 3, "model_version": "v1", "prediction": [1, 1, 0]}
    )
    result = ingest_frame(store, frame, "predictions", source="frame")
    assert (result.accepted, result.duplicates, result.quarantined) == (1, 1, 1)


def test_cli_ingest_prints_the_contract_json(store, tmp_path):
    path = write(tmp_path / "p.csv", GOOD_PREDICTIONS + "bad,never,v1,1,0.5,1,DE,18-25\n")
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "ingest", str(path), "--db", str(store.path), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    assert {k: document[k] for k in ("accepted", "duplicates", "quarantined", "reasons")} == {
        "accepted": 3,
        "duplicates": 0,
        "quarantined": 1,
        "reasons": {"ts is not a timestamp": 1},
    }


def test_cli_refuses_an_unreadable_file_with_one_line_and_exit_2(store, tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"")
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "ingest", str(path), "--db", str(store.path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "error: x.csv: the file is empty"
    assert "Traceback" not in out.stderr


def test_a_typed_frame_is_checked_as_its_text_would_be(store, tmp_path):
    """Typed columns (time, integer, float) are tested for NULL alone, not written out as text first: the same rows
    as a CSV get the same verdicts, reasons and stored values, repeats included (a key in the file three times)."""
    minutes = [0, 1, 0, None, 4, 5, 6, 7]  # after 2026-01-01 10:00 UTC; the second "a" is the first's repeat
    ts = pa.array([None if m is None else 1_767_261_600_000_000 + m * 60_000_000 for m in minutes])
    ts = ts.cast(pa.timestamp("us", tz="UTC"))
    frame = pa.table({
        "trace_id": ["a", "b", "a", "c", "d", "a", "e", "f"],
        "ts": ts,
        "model_version": ["v1"] * 8,
        "prediction": pa.array([1, 0, 1, 1, None, 0, 1, 2], pa.int8()),
        "score": pa.array([0.9, None, 0.9, 0.5, 0.5, 0.2, float("nan"), 0.7], pa.float64()),
        "amount": pa.array([1.5, None, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0], pa.float64()),
    })  # fmt: skip
    typed = ingest_frame(store, frame, "predictions", source="typed")
    text = write(
        tmp_path / "same.csv",
        """
        trace_id,ts,model_version,prediction,score,amount
        a,2026-01-01 10:00:00+00:00,v1,1,0.9,1.5
        b,2026-01-01 10:01:00+00:00,v1,0,,
        a,2026-01-01 10:00:00+00:00,v1,1,0.9,1.5
        c,,v1,1,0.5,2.0
        d,2026-01-01 10:04:00+00:00,v1,,0.5,3.0
        a,2026-01-01 10:05:00+00:00,v1,0,0.2,4.0
        e,2026-01-01 10:06:00+00:00,v1,1,nan,5.0
        f,2026-01-01 10:07:00+00:00,v1,2,0.7,6.0
        """,
    )
    other = Store(tmp_path / "other.duckdb")
    as_text = ingest_file(other, text)
    assert (typed.accepted, typed.duplicates, typed.quarantined) == (2, 1, 5)
    reasons = {
        "duplicate trace_id in file with other values": 1,
        "missing ts": 1,
        "missing prediction": 1,
        "score is not a number": 1,
        "prediction is not 0 or 1": 1,
    }
    assert typed.reasons == reasons and as_text.reasons == reasons
    assert (as_text.accepted, as_text.duplicates, as_text.quarantined) == (2, 1, 5)
    query = "SELECT trace_id, ts, prediction, score, amount FROM predictions ORDER BY trace_id"
    with store.connect() as con, other.connect() as con2:
        stored = con.execute(query).fetchall()
        assert stored == con2.execute(query).fetchall()
    assert [r[0] for r in stored] == ["a", "b"] and stored[1][3] is None and stored[1][4] is None


def test_a_text_value_of_only_spaces_is_missing_in_a_file_and_in_a_frame(store, tmp_path):
    """Text keeps the blank check (only typed columns test NULL alone): spaces in a required text column are a
    missing value, whether the CSV quotes them or an Arrow frame holds them."""
    path = write(
        tmp_path / "blank.csv",
        """
        trace_id,ts,model_version,prediction,score
        "  ",2026-01-01 10:00,v1,1,0.9
        a,2026-01-01 10:00," ",1,0.9
        b,2026-01-01 10:00,v1,1,0.9
        """,
    )
    result = ingest_file(store, path)
    assert (result.accepted, result.quarantined) == (1, 2)
    assert result.reasons == {"missing trace_id": 1, "missing model_version": 1}
    frame = pa.table({"trace_id": ["   ", "c"], "ts": ["2026-01-01 10:00"] * 2, "model_version": ["v1", "  "],
                      "prediction": pa.array([1, 0], pa.int8())})  # fmt: skip
    typed = ingest_frame(store, frame, "predictions", source="frame")
    assert (typed.accepted, typed.quarantined) == (0, 2)
    assert typed.reasons == {"missing trace_id": 1, "missing model_version": 1}
