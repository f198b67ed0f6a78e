"""A lake folder read in place gives the same numbers as the same rows ingested into the store: the summary,
drift, A/B, fairness and the retraining triggers; rows that break a rule are left out and counted by reason."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.cli.test_golden_cli import differences
from tests.conftest import ROOT
from workbench.abtest.request import ABTestRequest
from workbench.abtest.run import run as run_abtest
from workbench.core.errors import InputError, ReadOnlyError
from workbench.core.window import Window
from workbench.demo.scenario import Scenario, build_demo
from workbench.drift.request import DriftRequest
from workbench.drift.run import run as run_drift
from workbench.fairness.request import FairnessRequest
from workbench.fairness.run import run as run_fairness
from workbench.ingest.lake import LakeStore, export_lake, open_store, validation_report
from workbench.sources.base import StoreSource
from workbench.sources.store import Store
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


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, LakeStore]:
    folder = tmp_path_factory.mktemp("lake")
    store = Store(folder / "w.duckdb")
    build_demo(store, Scenario(rows=20_000, days=40, seed=3))
    return store, LakeStore(export_lake(store, folder / "lake"))  # hive partitions by day: date=2026-01-01/


def test_the_lake_summary_equals_the_store_s(pair) -> None:
    store, lake = pair
    assert differences(strip(store_summary(store).to_dict()), strip(store_summary(lake).to_dict())) == []


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
