"""DriftRequest (validated once, the CLI's messages), run() in each mode against the lower-level functions, and
DriftResult as a core.result.Result (verdict, reasons, evidence, to_frame, to_json)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.core.errors import InputError
from workbench.core.result import Result
from workbench.core.window import Window
from workbench.drift.files import compare_file_to_window, compare_files
from workbench.drift.over_time import drift_over_time, estimated_performance
from workbench.drift.request import FILE_TO_WINDOW, FILES, STORE, DriftRequest, OverTimeRequest
from workbench.drift.run import run
from workbench.drift.store import compare
from workbench.sources.base import FileSource, StoreSource
from workbench.sources.store_queries import filtered_predictions

A, B = Window(end=dt.datetime(2026, 1, 11, tzinfo=dt.UTC)), Window(start=dt.datetime(2026, 1, 24, tzinfo=dt.UTC))


def close(one: object, other: object) -> bool:
    """Equal JSON values, floats to 1e-9 relative (DuckDB's parallel sums move the last digits)."""
    if isinstance(one, dict) and isinstance(other, dict):
        return one.keys() == other.keys() and all(close(one[k], other[k]) for k in one)
    if isinstance(one, list) and isinstance(other, list):
        return len(one) == len(other) and all(close(a, b) for a, b in zip(one, other, strict=True))
    if isinstance(one, float) and isinstance(other, float):
        return one == pytest.approx(other, rel=1e-9, abs=1e-12)
    return one == other


def same(one: dict, other: dict) -> bool:
    """Two JSON documents equal but for the run's duration."""
    return close({**one, "seconds": None}, {**other, "seconds": None})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give --reference and --current (windows of the store) or --reference-file/--current-file"),
        ({"reference": Path("r.csv")}, "give both --reference-file and --current-file, or --reference-file with"),
        ({"current": Path("c.csv")}, "give both --reference-file and --current-file"),
        ({"reference": A, "current": Path("c.csv")}, "give both --reference-file and --current-file"),
        ({"reference": A, "current": B, "categorical": ["x"]}, "--categorical applies to files"),
        ({"reference": "r.csv", "current": "c.csv", "over_time": "week"}, "--over-time applies to windows"),
        ({"reference": A, "over_time": "fortnight"}, "chunk must be day, week or a number of rows"),
        ({"reference": A, "over_time": "50"}, "a chunk of rows needs at least 100 rows"),
        ({"reference": 3}, "the reference must be a window of the store or a file"),
    ],
)
def test_a_bad_request_is_refused_once_with_one_line(kwargs, message):
    with pytest.raises(InputError) as caught:
        DriftRequest(**kwargs)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_sides_give_the_mode_and_texts_are_paths():
    assert DriftRequest(A, B).mode == STORE and DriftRequest(None, B).reference_window == Window()
    files = DriftRequest("r.csv", "c.parquet", ["a"], ["a"])
    assert files.mode == FILES and files.reference == Path("r.csv") and files.features == ("a",)
    assert files.categorical == ("a",) and DriftRequest("r.csv", B).mode == FILE_TO_WINDOW
    assert DriftRequest(A).feature_list is None and DriftRequest(A, over_time="day").over_time == "day"


@pytest.fixture(scope="module")
def two_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drift-request")
    rng = np.random.default_rng(3)
    pd.DataFrame({"x": rng.normal(0, 1, 3000), "c": rng.choice(["a", "b"], 3000)}).to_csv(folder / "r.csv", index=False)
    pd.DataFrame({"x": rng.normal(0.8, 1, 2500), "c": rng.choice(["a", "b", "z"], 2500)}).to_parquet(
        folder / "c.parquet"
    )
    return folder / "r.csv", folder / "c.parquet"


def test_run_on_two_files_is_compare_files_and_needs_no_source(two_files):
    request = DriftRequest(*two_files, multivariate=False)
    result = run(None, request)
    assert same(result.to_json(), compare_files(request).to_json())
    assert same(run(FileSource(two_files[1]), request).to_json(), result.to_json())


def test_run_on_store_windows_is_compare_and_over_time_adds_both_tables(demo):
    store, truth = demo
    start = dt.datetime.fromisoformat(truth["start"]).replace(tzinfo=dt.UTC)
    reference, current = Window(end=start + dt.timedelta(days=30)), Window(start=start + dt.timedelta(days=60))
    request = DriftRequest(reference, current, ("amount", "device"), multivariate=False)
    result = run(StoreSource(store), request)
    assert same(result.to_json(), compare(store, request).to_json())
    assert "over_time" not in result.to_json()
    timed = run(
        StoreSource(store), DriftRequest(reference, current, ("amount", "device"), multivariate=False, over_time="week")
    )
    document = timed.to_json()
    assert same({k: v for k, v in document.items() if k not in ("over_time", "performance")}, result.to_json())
    assert close(
        document["over_time"],
        drift_over_time(store, OverTimeRequest(reference, "week", features=("amount", "device"))).to_dict(),
    )
    assert close(document["performance"], estimated_performance(store, reference, "week", None).to_dict())
    with pytest.raises(InputError, match="a window of the store needs a store"):
        run(FileSource(Path("x.csv")), request)


def test_run_on_a_file_against_a_window_is_compare_file_to_window(demo, tmp_path):
    store, truth = demo
    start = dt.datetime.fromisoformat(truth["start"]).replace(tzinfo=dt.UTC)
    training = tmp_path / "training.parquet"
    with store.ibis() as con:
        filtered_predictions(con, Window(end=start + dt.timedelta(days=20))).drop("ingest_id").to_parquet(training)
    request = DriftRequest(training, Window(start=start + dt.timedelta(days=60)), multivariate=False)
    result = run(StoreSource(store), request)
    assert result.reference["label"] == "training.parquet"
    assert same(result.to_json(), compare_file_to_window(store, request).to_json())


def test_the_result_keeps_the_contract(two_files):
    result = run(None, DriftRequest(*two_files, multivariate=False))
    assert isinstance(result, Result) and result.family == "drift"
    assert result.verdict == ("drift" if result.summary["dataset_drift"] else "no drift")
    assert result.to_json() == result.to_dict(with_distribution=False)
    assert result.evidence() == {
        "verdict_text": result.verdict_text, "n_features": 2, "n_drifted": result.summary["n_drifted"],
        "share_drifted": result.summary["share_drifted"], "dataset_drift": result.summary["dataset_drift"],
        "drifted": result.drifted, "reference": "r.csv", "current": "c.parquet",
    }  # fmt: skip
    ordered = [f.name for f in result.ordered]
    assert ordered == sorted(ordered, key=lambda n: (not result.feature(n).drift, -(result.feature(n).psi or 0)))
    assert result.drifted == [n for n in ordered if result.feature(n).drift]
    frame = result.to_frame()
    assert list(frame["name"]) == ordered and "distribution" not in frame.columns
    assert frame.loc[0, "psi"] == result.ordered[0].psi
    top = result.ordered[0]
    assert result.reasons[0] == f"{top.name}: PSI {top.psi:.2f} ≥ 0.1"
    assert result.reasons[-1] == f"{result.summary['n_drifted']} of 2 features drifted; dataset drift needs ≥ 50%"
