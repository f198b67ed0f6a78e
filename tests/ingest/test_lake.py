"""A lake folder read in place gives the same numbers as the same rows ingested into the store: the summary,
drift, A/B, fairness and the retraining triggers; rows that break a rule are left out and counted by reason."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.test_golden_cli import differences
from tests.conftest import ROOT
from workbench.abtest.request import ABTestRequest
from workbench.abtest.run import run as run_abtest
from workbench.core.errors import InputError, ReadOnlyError
from workbench.core.schema import Roles, load_roles
from workbench.core.window import Window
from workbench.demo.scenario import Scenario, build_demo
from workbench.drift.request import DriftRequest
from workbench.drift.run import run as run_drift
from workbench.fairness.request import FairnessRequest
from workbench.fairness.run import run as run_fairness
from workbench.ingest.lake import LakeStore, export_lake, open_store, validation_report
from workbench.ingest.pipeline import ingest_files, total
from workbench.ingest.staging import literal, q
from workbench.sources.base import StoreSource
from workbench.sources.store import Store, stored_roles
from workbench.sources.store_queries import store_bounds, store_summary
from workbench.stream.request import CheckRequest
from workbench.stream.triggers import run as run_check

SKIP = {"path", "ingests", "seconds", "source", "db", "evaluated_at", "data_version", "settings"}


def strip(document: object) -> object:
    """The document without what names the source or the run (paths, durations)."""
    if isinstance(document, dict):
        return {k: strip(v) for k, v in document.items() if k not in SKIP}
    if isinstance(document, list):
        return [strip(v) for v in document]
    return document


@pytest.fixture(scope="module", autouse=True)
def data_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The data folder of this module's runs (the lakes' caches go there, not into the repository's data/)."""
    folder = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_DB", str(folder / "workbench.duckdb"))
        yield folder


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, LakeStore]:
    folder = tmp_path_factory.mktemp("lake")
    store = Store(folder / "w.duckdb")
    build_demo(store, Scenario(rows=20_000, days=40, seed=3))
    return store, LakeStore(export_lake(store, folder / "lake"))  # hive partitions by day: date=2026-01-01/


def test_the_lake_summary_equals_the_store_s(pair) -> None:
    store, lake = pair
    assert differences(strip(store_summary(store).to_dict()), strip(store_summary(lake).to_dict())) == []


def test_a_lakes_coverage_is_kept_per_snapshot_of_its_files(pair, tmp_path: Path, monkeypatch) -> None:
    """The summary's coverage (a join of every feedback row with every prediction) is computed once per snapshot
    and read from the cache by the next reader; a new file makes a new snapshot; a store never reads it."""
    import workbench.sources.store_queries as store_queries

    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "data" / "workbench.duckdb"))
    store = pair[0]
    lake = LakeStore(export_lake(store, tmp_path / "lake"))
    first = store_summary(lake)
    assert (first.coverage_any, first.coverage_labelled) == (
        store_summary(store).coverage_any, store_summary(store).coverage_labelled)  # fmt: skip
    [kept] = (tmp_path / "data" / ".lake-cache").glob("coverage-*.json")
    document = json.loads(kept.read_text())
    assert document["value"]["with_any"] == round(first.coverage_any * first.predictions) > 1000
    document["value"]["with_any"] = 7  # a marker: the next reader of this snapshot takes the kept numbers
    kept.write_text(json.dumps(document))
    joins = []
    original = store_queries.snapshot_memo.remembered
    counted = lambda con, name, compute: original(con, name, lambda: joins.append(name) or compute())  # noqa: E731
    monkeypatch.setattr(store_queries.snapshot_memo, "remembered", counted)
    assert store_summary(lake).coverage_any == 7 / first.predictions and joins == []
    # a new file (a replayed copy of a day's file, whose repeats are left out): a new snapshot, computed again
    day = sorted((lake.path / "predictions").glob("date=*"))[0]
    late = lake.path / "predictions" / "date=2026-12-31" / "late.parquet"
    late.parent.mkdir()
    late.write_bytes(next(day.glob("*.parquet")).read_bytes())
    assert store_summary(lake).coverage_any == first.coverage_any and joins == ["coverage"]
    assert len(list((tmp_path / "data" / ".lake-cache").glob("coverage-*.json"))) == 2
    with duckdb.connect(str(store.path)) as con:  # a store's meta naming a snapshot is not trusted
        con.execute("INSERT INTO meta VALUES ('snapshot', ?)", [json.dumps(document["snapshot"])])
    assert store_summary(store).coverage_any == first.coverage_any
    with duckdb.connect(str(store.path)) as con:
        con.execute("DELETE FROM meta WHERE key = 'snapshot'")


def test_drift_on_the_lake_equals_the_store_s(pair) -> None:
    store, lake = pair
    first, last = store_bounds(store)
    import datetime as dt

    middle = first + (last - first) / 2
    request = DriftRequest(Window(end=middle), Window(start=middle), multivariate=False)
    ours, theirs = (run_drift(StoreSource(s), request).to_json() for s in (store, lake))
    assert differences(strip(ours), strip(theirs)) == []
    assert isinstance(middle, dt.datetime)


def test_abtest_on_the_lake_equals_the_store_s(pair) -> None:
    store, lake = pair
    ours, theirs = (run_abtest(StoreSource(s), ABTestRequest()).to_json() for s in (store, lake))
    assert ours["period"]["aggregated_from"] != theirs["period"]["aggregated_from"]  # kept sums vs the join
    ours["period"].pop("aggregated_from"), theirs["period"].pop("aggregated_from")
    assert differences(strip(ours), strip(theirs)) == []


def test_fairness_on_the_lake_equals_the_store_s(pair) -> None:
    store, lake = pair
    request = FairnessRequest(sensitive=("region",))
    ours, theirs = (run_fairness(StoreSource(s), request).to_json() for s in (store, lake))
    assert differences(strip(ours), strip(theirs)) == []


def test_triggers_on_the_lake_equal_the_store_s(pair) -> None:
    store, lake = pair
    request = CheckRequest(rules_path=ROOT / "rules.example.toml")
    ours, theirs = (run_check(StoreSource(s), request).to_json() for s in (store, lake))
    assert differences(strip(ours), strip(theirs)) == []


def test_a_lake_is_never_written(pair) -> None:
    _, lake = pair
    with pytest.raises(ReadOnlyError, match="is a lake folder: it is read in place, never written"):
        lake.connect(read_only=False).__enter__()


def test_rows_that_break_a_rule_are_left_out_and_counted(tmp_path: Path) -> None:
    folder = tmp_path / "lake"
    (folder / "predictions").mkdir(parents=True)
    rows = [("a", "2026-01-02", "v1", 1, 0.5), ("b", "2026-01-02", "v1", 7, 0.5), ("c", "epoch", "v1", 1, 0.5),
            ("d", "2026-01-03", "v1", 0, 1.5), ("e", "2026-01-03", "v2", 0, 0.25)]  # fmt: skip
    values = ", ".join(f"('{t}', '{ts}', '{v}', {p}, {s})" for t, ts, v, p, s in rows)
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM (VALUES {values}) AS t(trace_id, ts, model_version, prediction, score)) "
                    f"TO '{folder / 'predictions' / 'part.parquet'}' (FORMAT parquet)")  # fmt: skip
    lake = LakeStore(folder)
    report = validation_report(lake)
    assert report["valid"] == {"predictions": 2, "feedback": 0}
    assert report["reasons"] == {"predictions": {"prediction is not 0 or 1": 1, "score is outside [0, 1]": 1,
                                                 "ts is not a timestamp": 1}}  # fmt: skip
    summary = store_summary(lake)
    assert (summary.predictions, summary.quarantined) == (2, 3)
    # the rules ran once: the analyses' view leaves those three rows out by file and row, with no check per row
    with lake.connect() as con:
        view = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'predictions'").fetchone()[0]
        left_out = con.execute("SELECT row_index, reason FROM lake_left_out_predictions ORDER BY 1").fetchall()
        quarantine = con.execute("SELECT source, row_number, reason FROM quarantine ORDER BY 2").fetchall()
    assert "CASE" not in view and "lake_left_out_predictions" in view
    assert left_out == [(1, "prediction is not 0 or 1"), (2, "ts is not a timestamp"), (3, "score is outside [0, 1]")]
    assert quarantine == [("predictions/part.parquet", 2, "prediction is not 0 or 1"),
                          ("predictions/part.parquet", 3, "ts is not a timestamp"),
                          ("predictions/part.parquet", 4, "score is outside [0, 1]")]  # fmt: skip


def test_a_source_spec_names_a_store_or_a_lake(tmp_path: Path) -> None:
    assert isinstance(open_store(f"lake:{tmp_path}"), LakeStore)
    assert type(open_store(tmp_path / "w.duckdb")) is Store
    (tmp_path / "predictions").mkdir()
    assert isinstance(open_store(tmp_path), LakeStore)  # a folder with predictions/ is a lake
    with pytest.raises(InputError, match="no lake at"):
        LakeStore(tmp_path).connect().__enter__()


def test_the_demo_writes_the_same_rows_as_a_lake(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    lake, db = str(tmp_path / "lake"), str(tmp_path / "w.duckdb")
    demo = [sys.executable, "-m", "workbench.cli", "demo", "--rows", "3000", "--days", "10", "--db", db, "--lake", lake]
    out = subprocess.run([*demo, "--json"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["lake"] == str(tmp_path / "lake")
    info = subprocess.run([sys.executable, "-m", "workbench.cli", "--source", f"lake:{tmp_path / 'lake'}", "info",
                           "--json"], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["predictions"] == 3000
    refused = subprocess.run([sys.executable, "-m", "workbench.cli", "validate", "--db", str(tmp_path / "w.duckdb")],
                             capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert refused.returncode == 2 and "validate reads a lake folder" in refused.stderr


# Repeated keys: the lake resolves them as the ingest does, in the lake's order (file path, then row index).
# The demo's rows once in part-0, an earlier file with other values for the first 50 trace ids, and a later one
# with copies (identical, or with other values) of some of them, some repeated again inside that file.
REPEAT_FILES = ("a-early.parquet", "part-0.parquet", "part-1.parquet")
EXPECTED_REPEATS = {  # by hand, from the construction below (flat files: no partition key tells copies apart)
    "valid_predictions": 20_000,  # every trace id once (the earlier file's version of the first 50)
    "reasons": {
        "predictions": {
            "trace_id already in store with other values": 50 + 100,
            "duplicate trace_id in file with other values": 30,
        }
    },
    "duplicates": {"predictions": 200 + 40 + 20, "feedback": 300 + 20},
}


def write_repeats_lake(store: Store, folder: Path, files: tuple[str, str, str] = REPEAT_FILES) -> LakeStore:
    """``store``'s rows as a lake with repeated keys (``files``: the earlier file, all rows, the later file, each
    a path below predictions/ and feedback/); see :data:`EXPECTED_REPEATS` for what the ingest makes of them."""
    early, whole, later = files
    flip = "* REPLACE (1 - prediction AS prediction)"
    moved = "CASE WHEN score < 0.5 THEN score + 0.25 ELSE score - 0.25 END"  # never the same score
    other = f"* REPLACE (1 - prediction AS prediction, {moved} AS score)"
    with duckdb.connect() as con:
        con.execute(f"ATTACH {literal(str(store.path))} AS s (READ_ONLY)")
        names = [n for (n,) in con.execute("SELECT column_name FROM (DESCRIBE s.predictions)").fetchall()]
        columns = [c for c in names if not c.startswith("__") and c != "ingest_id"]
        con.execute(f"CREATE TABLE p AS SELECT {', '.join(q(c) for c in columns)}, row_number() OVER "
                    "(ORDER BY ts, trace_id) AS n FROM s.predictions")  # fmt: skip
        event = "ts, trace_id, kind, type, value, label"
        con.execute(f"CREATE TABLE f AS SELECT {event}, row_number() OVER (ORDER BY {event}) AS n FROM s.feedback")
        parts = {
            ("p", early): [f"SELECT {flip} FROM p WHERE n <= 50"],
            ("p", whole): ["SELECT * FROM p"],
            ("p", later): [
                "SELECT * FROM p WHERE n BETWEEN 101 AND 300",  # identical to part-0's: duplicates
                f"SELECT {flip} FROM p WHERE n BETWEEN 301 AND 400",  # other values than part-0's: quarantined
                f"SELECT {flip} FROM p WHERE n BETWEEN 301 AND 340",  # identical to this file's first: duplicates
                f"SELECT {other} FROM p WHERE n BETWEEN 341 AND 370",  # other than this file's first: quarantined
                "SELECT * FROM p WHERE n BETWEEN 401 AND 410",  # twice: both duplicates
                "SELECT * FROM p WHERE n BETWEEN 401 AND 410",
            ],
            ("f", whole): ["SELECT * FROM f"],
            ("f", later): ["SELECT * FROM f WHERE n <= 300", "SELECT * FROM f WHERE n <= 20"],  # duplicates
        }
        for (source, name), selects in parts.items():
            path = folder / ("predictions" if source == "p" else "feedback") / name
            path.parent.mkdir(parents=True, exist_ok=True)
            ordered = " UNION ALL ".join(f"SELECT *, {i} AS part FROM ({s})" for i, s in enumerate(selects))
            con.execute(f"COPY (SELECT * EXCLUDE (n, part) FROM ({ordered}) ORDER BY part, n) TO {literal(str(path))} "
                        "(FORMAT parquet)")  # fmt: skip
    sensitive = ", ".join(f'"{c}"' for c in stored_roles_of(store).predictions.sensitive)
    (folder / "roles.toml").write_text(f"[predictions]\nsensitive = [{sensitive}]\n", encoding="utf-8")
    return LakeStore(folder)


def stored_roles_of(store: Store) -> Roles:
    with store.connect() as con:
        return stored_roles(con)


def ingest_in_order(lake: LakeStore, db: Path) -> tuple[Store, dict]:
    """The lake's files ingested into a new store in the lake's order (path by path), and the ingest's totals."""
    files = [f for table in ("predictions", "feedback") for f in sorted((lake.path / table).rglob("*.parquet"))]
    store = Store(db)
    return store, total(ingest_files(store, files, roles=load_roles(lake.path / "roles.toml")))


@pytest.fixture(scope="module")
def repeats(pair, tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, LakeStore, dict]:
    folder = tmp_path_factory.mktemp("repeats")
    lake = write_repeats_lake(pair[0], folder / "lake")
    store, ingested = ingest_in_order(lake, folder / "ingested.duckdb")
    return store, lake, ingested


def test_repeated_keys_in_a_lake_are_left_out_as_the_ingest_leaves_them_out(pair, repeats) -> None:
    _, lake, ingested = repeats
    report = validation_report(lake)
    feedback = store_summary(pair[0]).feedback
    assert report["valid"] == {"predictions": EXPECTED_REPEATS["valid_predictions"], "feedback": feedback}
    assert report["reasons"] == EXPECTED_REPEATS["reasons"]
    assert report["duplicates"] == EXPECTED_REPEATS["duplicates"]
    # the reference: the ingest of the same files in the same order
    assert sum(report["valid"].values()) == ingested["accepted"]
    assert sum(report["duplicates"].values()) == ingested["duplicates"]
    assert report["reasons"]["predictions"] == ingested["reasons"]
    summary = store_summary(lake)
    assert (summary.predictions, summary.quarantined) == (20_000, 180)
    assert summary.quarantine_by_reason == EXPECTED_REPEATS["reasons"]["predictions"]


def test_a_lake_with_repeats_gives_the_ingested_store_s_documents(repeats) -> None:
    store, lake, _ = repeats
    assert differences(strip(store_summary(store).to_dict()), strip(store_summary(lake).to_dict())) == []
    first, last = store_bounds(store)
    middle = first + (last - first) / 2
    drift = DriftRequest(Window(end=middle), Window(start=middle), multivariate=False)
    fairness = FairnessRequest(sensitive=("region",))
    for run, request in ((run_drift, drift), (run_fairness, fairness), (run_abtest, ABTestRequest())):
        ours, theirs = (run(StoreSource(s), request).to_json() for s in (store, lake))
        for document in (ours, theirs):
            document.get("period", {}).pop("aggregated_from", None)  # the A/B's kept sums vs the lake's join
        assert differences(strip(ours), strip(theirs)) == [], request


def test_a_lake_without_repeats_reads_its_files_as_before(pair) -> None:
    """No key repeats and no row breaking a rule (the usual lake): the views read no file names or row numbers,
    nothing is anti-joined, and no rule is checked per row (the rules ran once, over every row)."""
    _, lake = pair
    with lake.connect() as con:
        views = dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())
        tables = ("predictions", "feedback")
        left_out = [con.execute(f"SELECT count(*) FROM lake_left_out_{t}").fetchone()[0] for t in tables]
    for table in ("predictions", "feedback"):
        assert "file_row_number" not in views[table] and "lake_left_out" not in views[table]
        assert "CASE" not in views[table]
    assert left_out == [0, 0]


def test_validate_reports_the_feedback_coverage_and_orphans_and_keeps_them_for_info(
    pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first read (validate) counts the predictions with feedback and with a label, and the feedback rows
    that name no prediction, as SQL over the Parquet files counts them; the next ``info`` on that snapshot reads
    those numbers instead of joining the streams again, and gives the same coverage."""
    import workbench.sources.store_queries as store_queries

    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "data" / "workbench.duckdb"))
    lake = LakeStore(export_lake(pair[0], tmp_path / "lake"))
    orphans = lake.path / "feedback" / "date=2026-12-30" / "orphans.parquet"
    orphans.parent.mkdir()
    first_file = literal(str(next((lake.path / "feedback").glob("date=*/*.parquet"))))
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * REPLACE ('nobody-' || trace_id AS trace_id) FROM read_parquet({first_file}) "
                    f"LIMIT 3) TO {literal(str(orphans))} (FORMAT parquet)")  # fmt: skip
        files = {t: literal(str(lake.path / t / "**" / "*.parquet")) for t in ("predictions", "feedback")}
        by_hand = con.execute(f"""
            WITH p AS (SELECT trace_id FROM read_parquet({files["predictions"]})),
                 f AS (SELECT trace_id, label FROM read_parquet({files["feedback"]}))
            SELECT (SELECT count(*) FROM p WHERE trace_id IN (SELECT trace_id FROM f)),
                   (SELECT count(*) FROM p WHERE trace_id IN (SELECT trace_id FROM f WHERE label IS NOT NULL)),
                   (SELECT count(*) FROM f WHERE trace_id NOT IN (SELECT trace_id FROM p))""").fetchone()  # fmt: skip
    report = validation_report(lake)
    assert report["quarantined"] == {}  # every row valid: the hand count reads the same rows
    feedback = report["feedback"]
    assert (feedback["predictions_with_feedback"], feedback["predictions_labelled"], feedback["orphans"]) == by_hand
    assert by_hand[2] >= 3 and by_hand[1] > 1000
    joins = []
    original = store_queries.snapshot_memo.remembered
    counted = lambda con, name, compute: original(con, name, lambda: joins.append(name) or compute())  # noqa: E731
    monkeypatch.setattr(store_queries.snapshot_memo, "remembered", counted)
    summary = store_summary(lake)
    assert joins == [] and summary.orphan_feedback == by_hand[2]
    assert summary.coverage_any == by_hand[0] / summary.predictions


def test_the_repeats_are_found_once_per_snapshot_of_the_files(
    pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "data" / "workbench.duckdb"))
    lake = write_repeats_lake(pair[0], tmp_path / "lake")
    first = validation_report(lake)
    cached = sorted(p.name for p in (tmp_path / "data" / ".lake-cache").glob("*.parquet") if "-rejected-" not in p.name)
    assert [name.split("-")[0] for name in cached] == ["feedback", "predictions"]
    rejected = sorted(p.name for p in (tmp_path / "data" / ".lake-cache").glob("*-rejected-*.parquet"))
    assert [name.split("-")[0] for name in rejected] == ["feedback", "predictions"]  # the rules' rows, kept too
    # a new process reads the cache file: emptied, it says no copies (no query looked again)
    path = tmp_path / "data" / ".lake-cache" / cached[1]
    pq.write_table(pq.read_table(path).slice(0, 0), path)
    command = [sys.executable, "-m", "workbench.cli", "--source", f"lake:{lake.path}", "validate", "--json"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["duplicates"] == {**first["duplicates"], "predictions": 0}
    again = tmp_path / "lake" / "predictions" / "part-2.parquet"  # a new file: a new snapshot, found again
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_parquet({literal(str(again.with_name('a-early.parquet')))})) "
                    f"TO {literal(str(again))} (FORMAT parquet)")  # fmt: skip
    report = validation_report(lake)
    assert report["duplicates"]["predictions"] == first["duplicates"]["predictions"] + 50
    assert len(list((tmp_path / "data" / ".lake-cache").glob("predictions-[0-9a-f]*.parquet"))) == 2
    assert len(list((tmp_path / "data" / ".lake-cache").glob("predictions-rejected-*.parquet"))) == 2


ROW = st.tuples(st.sampled_from(["a", " a", "b", "c", ""]), st.sampled_from([0, 1, 7]), st.sampled_from([0.25, 0.5]))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.lists(ROW, min_size=1, max_size=6), min_size=1, max_size=3))
def test_any_small_lake_leaves_out_what_the_ingest_of_its_files_leaves_out(
    files: list[list[tuple[str, int, float]]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Repeats across and within files, mixed with rows that break a rule (a blank trace_id, a prediction of 7)
    and keys equal only once trimmed (' a' is 'a'): the lake's counts are the ingest's, reason by reason."""
    folder = tmp_path_factory.mktemp("small") / "lake"
    (folder / "predictions").mkdir(parents=True)
    with duckdb.connect() as con:
        for i, rows in enumerate(files):
            values = ", ".join(f"('{t}', '2026-01-02', 'v1', {p}, {s})" for t, p, s in rows)
            path = folder / "predictions" / f"part-{i}.parquet"
            con.execute(f"COPY (SELECT * FROM (VALUES {values}) AS t(trace_id, ts, model_version, prediction, score)) "
                        f"TO {literal(str(path))} (FORMAT parquet)")  # fmt: skip
    (folder / "roles.toml").write_text("", encoding="utf-8")
    report = validation_report(LakeStore(folder))
    _, ingested = ingest_in_order(LakeStore(folder), folder.parent / "ingested.duckdb")
    assert report["valid"]["predictions"] == ingested["accepted"]
    assert report["duplicates"]["predictions"] == ingested["duplicates"]
    assert report["reasons"].get("predictions", {}) == ingested["reasons"]
