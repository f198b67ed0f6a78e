"""The cheaper engine expressions of the fairness audit give the very numbers of the plain ones they replace:
score bins by ⌊score·bins⌋ with an edge correction = counting the edges; chunk numbers in integer arithmetic
= the floor of days/weeks; a file's checks from counts and bounds = the exact per-row counts (same errors);
cells without summing null signal columns = cells summing them."""

from __future__ import annotations

from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from tests.fairness.test_fairness_stats import random_rows
from workbench.core.errors import InputError
from workbench.fairness import queries as q
from workbench.fairness.audit import audit_file, audit_frame
from workbench.stats.fairness import FairnessSettings

QUICK = FairnessSettings(bootstrap_resamples=50)


@pytest.fixture()
def con():
    backend = ibis.duckdb.connect()
    backend.raw_sql("SET TimeZone = 'UTC'")
    yield backend
    backend.disconnect()


@pytest.mark.parametrize("bins", [2, 3, 7, 10, 20, 100])
def test_score_bin_by_floor_equals_counting_the_edges_at_and_next_to_every_edge(con, bins: int) -> None:
    edges = np.array(q.score_edges(bins))
    rng = np.random.default_rng(bins)
    near = np.concatenate([edges, np.nextafter(edges, 2), np.nextafter(edges, -1), np.nextafter(edges - 1e-16, -1)])
    grid = np.concatenate([np.arange(1001) / 1000, np.arange(101) * 0.01, np.arange(11) * 0.1])
    values = np.concatenate([rng.random(20_000), near, grid, [0.0, 1.0, -0.5, 1.5, np.inf, -np.inf, 5e-324]])
    con.create_table("scores", pd.DataFrame({"score": values}), overwrite=True)
    con.raw_sql("INSERT INTO scores VALUES ('nan'::DOUBLE), (NULL)")  # DuckDB orders NaN above every number
    t = con.table("scores")
    counted = sum((t.score >= float(e)).cast("int8") for e in edges)
    both = t.select(new=q.bin_index(t.score, edges.tolist()), old=counted).execute()
    assert both["new"].fillna(-1).tolist() == both["old"].fillna(-1).tolist()
    assert both["new"].max() == bins - 1


def test_score_bins_of_unequal_edges_are_still_counted(con) -> None:
    t = con.create_table("s", pd.DataFrame({"score": [0.0, 0.05, 0.2, 0.5, 0.99]}), overwrite=True)
    got = t.select(i=q.bin_index(t.score, [0.1, 0.5, 0.9])).execute()["i"].tolist()
    assert got == [0, 0, 1, 2, 3]


@pytest.mark.parametrize("chunk", ["day", "week"])
def test_chunk_numbers_are_the_floor_of_days_and_mondays_before_and_after_1970(con, chunk: str) -> None:
    rng = np.random.default_rng(5)
    us = rng.integers(-2_000_000_000_000_000, 4_000_000_000_000_000, 50_000)
    near = ["1969-12-31 23:59:59.999999", "1970-01-01 00:00:00", "1969-12-29 00:00:00", "1969-12-28 23:59:59.999999"]
    edges = pd.to_datetime([*near, "2026-03-02 00:00:00"], utc=True, format="ISO8601")
    us = np.concatenate([us, edges.as_unit("us").asi8])
    t = con.create_table("ts", pd.DataFrame({"ts": pd.to_datetime(us, unit="us", utc=True)}), overwrite=True)
    got = t.select(c=q.chunk_index(t.ts, chunk)).execute()["c"].to_numpy()
    day = np.floor_divide(us, 86_400_000_000)
    expected = day if chunk == "day" else np.floor_divide(day + 3, 7)  # 1970-01-01 was a Thursday
    assert (got == expected).all()
    assert q.chunk_start([int(expected[-1])], chunk)[0] == pd.Timestamp("2026-03-02", tz="UTC")  # a Monday


def _file(tmp_path: Path, frame: pd.DataFrame, fmt: str) -> Path:
    path = tmp_path / f"rows.{fmt}"
    frame.to_parquet(path, index=False) if fmt == "parquet" else frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.assign(y=f["y"].where(f.index % 50 != 0, 2)),
            r"label column 'y' has 60 values that are not 0 or 1",
        ),
        (lambda f: f.assign(y=f["y"].astype(float).where(f.index % 100 != 0, 0.5)), r"label column 'y' has 30 values"),
        (lambda f: f.assign(yhat=f["yhat"].where(f.index % 300 != 0, -1)), r"prediction column 'yhat' has 10 values"),
        (
            lambda f: f.assign(score=f["score"].where(f.index % 150 != 0, 1.5)),
            r"'score' has 20 values outside \[0, 1\]",
        ),
        (lambda f: f.assign(score=f["score"].where(f.index % 150 != 0, -0.1)), r"'score' has 20 values outside"),
    ],
)
def test_file_checks_from_bounds_give_the_exact_counts_of_bad_values(tmp_path: Path, fmt: str, change, message) -> None:
    frame = random_rows(11, 3000, 1).assign(score=lambda f: np.linspace(0, 1, len(f)))
    with pytest.raises(InputError, match=message):
        audit_file(_file(tmp_path, change(frame), fmt), "y", "yhat", ["s0"], score="score", settings=QUICK)


def test_a_nan_score_beside_one_above_1_is_still_refused(tmp_path: Path) -> None:
    frame = random_rows(12, 1000, 1).assign(score=lambda f: np.linspace(0, 1, len(f)))
    frame.loc[3, "score"] = np.nan  # Parquet keeps NaN (not null): the maximum is NaN, so the exact count decides
    frame.loc[7, "score"] = 1.2
    path = tmp_path / "nan.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(InputError, match=r"'score' has 1 values outside"):
        audit_file(path, "y", "yhat", ["s0"], score="score", settings=QUICK)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_valid_files_of_every_label_type_audit_the_same(tmp_path: Path, fmt: str) -> None:
    frame = random_rows(13, 2000, 2).assign(score=lambda f: np.linspace(0, 1, len(f)))
    reference = audit_frame(frame, "y", "yhat", ["s0", "s1"], score="score", settings=QUICK).to_dict()
    for variant in (
        frame,
        frame.assign(y=frame["y"].astype(float), yhat=frame["yhat"].astype(float)),
        frame.assign(y=frame["y"].astype(bool)),
        frame.assign(y=frame["y"].map({0: "no", 1: "yes"})),
    ):
        audit = audit_file(_file(tmp_path, variant, fmt), "y", "yhat", ["s0", "s1"], score="score", settings=QUICK)
        got = audit.to_dict()
        for key in ("groups", "disparities", "disparity_intervals", "verdict", "calibration"):
            assert _close(got[key], reference[key]), key


def _close(a: object, b: object) -> bool:
    """Equal, floats to 1e-12 (a score sum may differ in its last bits with the summation order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12, abs=1e-15)
    return a == b


def test_cells_without_summing_null_signals_equal_cells_summing_them(con) -> None:
    frame = random_rows(14, 4000, 2)
    frame["ts"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(len(frame)) % 30, unit="D")
    frame["score"] = np.linspace(0, 1, len(frame))
    frame.loc[frame.index % 4 == 0, "y"] = None
    table = con.create_table("rows", frame)
    rows = q.frame_rows(table, "y", "yhat", ["s0", "s1"], score="score", ts="ts")
    edges = q.score_edges(10)
    summed = q.cells(rows, ["s0", "s1"], "week", edges=edges, signals=True)
    skipped = q.cells(rows, ["s0", "s1"], "week", edges=edges, signals=False)
    pd.testing.assert_frame_equal(summed, skipped)
    assert summed["tp"].sum() > 0 and summed["unlabelled_selected"].sum() > 0
