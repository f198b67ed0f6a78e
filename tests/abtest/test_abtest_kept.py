"""The A/B analysis from the ingest's per-trace sums (workbench.abtest.kept) gives what the join of the
feedback gives: every metric kind, CUPED, windows, model-version arms, segments, crossed units; and the store
uses it only while the sums are current."""

from __future__ import annotations

import datetime as dt
import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.helpers.abtest_data import insert_tricky_predictions
from workbench.abtest.analyse import analyse_store
from workbench.abtest.request import ABTestRequest
from workbench.abtest.result import ABTestSettings
from workbench.core.schema import parse_roles
from workbench.core.window import Window
from workbench.ingest.pipeline import ingest_frame
from workbench.sources import trace_feedback, unit_sums
from workbench.sources.experiment import METRICS
from workbench.sources.store import Store, read_meta, write_meta

EVERY_METRIC = list(METRICS)


@pytest.fixture(scope="module")
def kept_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """3 arms, 400 units of which 5 crossed arms, a NULL segment, a unit-less prediction, tied dwell values,
    a pre-period without arms (CUPED), every metric's feedback type (some without a value); copies written."""
    store = Store(tmp_path_factory.mktemp("abkept") / "kept.duckdb")
    with store.connect(read_only=False) as con:
        insert_tricky_predictions(con, "['v1', 'v2'][1 + (i % 2)]")
        con.execute("""
            INSERT INTO predictions
            SELECT 'pre-' || i, TIMESTAMPTZ '2026-02-10 00:00:00+00' + to_microseconds((i * 3600000000)::BIGINT),
                   'v0', 0, 0.5, NULL, 'u-' || (i % 350), NULL, 'north', 'mobile'
            FROM range(600) t(i)""")  # fmt: skip
        con.execute("""
            INSERT INTO feedback
            SELECT CASE WHEN j % 10 = 0 THEN 'pre-' || (hash(j) % 600) ELSE 'tr-' || (hash(j) % 4000) END,
                   TIMESTAMPTZ '2026-03-02 00:00:00+00', 'explicit',
                   ['thumb', 'dwell', 'rating', 'click', 'correction'][1 + (j % 5)],
                   CASE WHEN j % 37 = 0 THEN NULL WHEN j % 5 = 0 THEN (hash(j + 1) % 2)::DOUBLE
                        WHEN j % 5 = 1 THEN (hash(j + 2) % 40) / 2.0 WHEN j % 5 = 2 THEN 1 + hash(j + 3) % 5
                        WHEN j % 5 = 3 THEN (hash(j + 4) % 3)::DOUBLE ELSE 1 END, NULL, NULL
            FROM range(12000) t(j)""")  # fmt: skip
        write_meta(con, "roles", {"predictions": {"sensitive": ["region"], "categorical": ["device"]}})
        trace_feedback.rebuild(con)
    return store


def _joined(store: Store, tmp_path: Path) -> Store:
    """A copy of ``store`` whose kept sums are stale (no stamp): the analysis joins the feedback."""
    copy = Store(tmp_path / "joined.duckdb")
    shutil.copy(store.path, copy.path)
    with copy.connect(read_only=False) as con:
        con.execute("DELETE FROM meta WHERE key = 'trace_feedback'")
    return copy


def _kept_is_used(store: Store) -> bool:
    with store.ibis() as con:
        return trace_feedback.copies_current(con)


def _path(result: dict[str, Any]) -> str:
    """What the analysis read (taken out of the result: the one entry the two paths must not share)."""
    return result["period"].pop("aggregated_from")


def _same(a: Any, b: Any, path: str = "") -> None:
    """Equal JSON documents: numbers to 1e-9 relative (sums in another order), everything else exactly."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            _same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


@pytest.mark.parametrize(
    ("window", "arm_source", "cuped"),
    [(None, "auto", False), (None, "arm", True),
     (Window(dt.datetime(2026, 3, 3, tzinfo=dt.UTC), dt.datetime(2026, 3, 8, tzinfo=dt.UTC)), "arm", True),
     (Window(model_versions=("v1", "v2")), "model_version", False)],
)  # fmt: skip
def test_every_metric_from_the_kept_sums_equals_the_join(
    kept_store: Store, tmp_path: Path, window: Window | None, arm_source: str, cuped: bool
) -> None:
    joined = _joined(kept_store, tmp_path)
    assert _kept_is_used(kept_store) and not _kept_is_used(joined)
    settings = ABTestSettings(segments=("region", "device"))
    args = {"window": window, "metrics": EVERY_METRIC, "guardrails": [], "arm_source": arm_source, "cuped": cuped,
            "settings": settings}  # fmt: skip
    kept, join = (
        analyse_store(kept_store, ABTestRequest(**args)).to_dict(),
        analyse_store(joined, ABTestRequest(**args)).to_dict(),
    )
    whole_experiment = window is None and arm_source != "model_version"
    assert _path(kept) == ("unit sums" if whole_experiment else "trace sums") and _path(join) == "feedback join"
    assert len(kept["comparisons"]) == len(EVERY_METRIC) * (len(kept["arms"]) - 1)
    if arm_source == "arm":
        assert kept["srm"]["crossover_units"] == join["srm"]["crossover_units"] > 0
    _same(kept, join)


def _ingested(tmp_path: Path) -> Store:
    """A store written by the ingest: orphan feedback first, then their predictions (a segment role), then
    late feedback, and predictions of new and of known units."""
    rng = np.random.default_rng(9)
    n = 3000
    predictions = pd.DataFrame({
        "trace_id": [f"t{i}" for i in range(n)],
        "ts": pd.Timestamp("2026-04-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 14 * 86400, n), unit="s"),
        "model_version": "v1", "prediction": rng.integers(0, 2, n), "score": rng.random(n),
        "arm": np.where(np.arange(n) % 2 == 0, "champion", "challenger"), "unit_id": [f"u{i % 700}" for i in range(n)],
        "region": rng.choice(["north", "south"], n),
    })  # fmt: skip
    kinds = rng.choice(["thumb", "dwell", "click", "rating", "correction"], 6000)
    feedback = pd.DataFrame({
        "trace_id": [f"t{i}" for i in rng.integers(0, n, 6000)],
        "ts": pd.Timestamp("2026-04-16", tz="UTC"), "kind": "explicit", "type": kinds,
        "value": np.where(kinds == "dwell", np.round(rng.gamma(2, 15, 6000), 1), rng.integers(0, 2, 6000)),
    })  # fmt: skip
    later = np.arange(n) >= 2500
    predictions.loc[later & (np.arange(n) % 7 == 0), "arm"] = "crossed-over"  # units seen in a second arm
    store = Store(tmp_path / "ingested.duckdb")
    roles = parse_roles('[predictions]\nsensitive = ["region"]\n')
    ingest_frame(store, feedback.iloc[:2000], "feedback")  # orphans: their predictions come next
    ingest_frame(store, predictions.iloc[:2500], "predictions", roles=roles)
    ingest_frame(store, feedback.iloc[2000:], "feedback")
    ingest_frame(store, predictions.iloc[2500:], "predictions")  # new units and more predictions of known ones
    return store


def test_a_store_written_by_the_ingest_is_analysed_from_the_kept_sums(tmp_path: Path) -> None:
    """Through the ingest the sums stay current and the result equals the join's."""
    store = _ingested(tmp_path)
    assert _kept_is_used(store)
    args = {"metrics": EVERY_METRIC, "guardrails": []}
    kept, join = (
        analyse_store(store, ABTestRequest(**args)).to_dict(),
        analyse_store(_joined(store, tmp_path), ABTestRequest(**args)).to_dict(),
    )
    assert (_path(kept), _path(join)) == ("unit sums", "feedback join")
    assert kept["srm"]["segments"]  # the region role is checked from the kept units
    _same(kept, join)


def _executed(store: Store, monkeypatch, **args: Any) -> tuple[list[str], Any]:  # type: ignore[no-untyped-def]
    """The SQL the analysis ran, and its result."""
    from ibis.backends.duckdb import Backend

    executed: list[str] = []
    execute = Backend.execute

    def spy(self, expr, *args, **kwargs):  # type: ignore[no-untyped-def]
        executed.append(str(self.compile(expr)))
        return execute(self, expr, *args, **kwargs)

    monkeypatch.setattr(Backend, "execute", spy)
    return executed, analyse_store(store, ABTestRequest(metrics=EVERY_METRIC, guardrails=(), **args))


GROUPS_UNITS = r'MAX\("t\d+"\."ts"\) AS "last"'  # the (unit, arm) GROUP BY of the predictions


def test_the_whole_experiment_reads_the_kept_units_and_no_feedback(kept_store: Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    executed, result = _executed(kept_store, monkeypatch)
    assert not any('"feedback"' in sql for sql in executed)
    assert not any(re.search(GROUPS_UNITS, sql) for sql in executed)
    assert sum(f'"{unit_sums.TABLE}"' in sql for sql in executed) == 1
    assert result.srm.crossover_units == 5


def test_a_window_groups_the_predictions_by_unit_once_and_reads_no_feedback(kept_store: Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    window = Window(dt.datetime(2026, 3, 2, tzinfo=dt.UTC), None)
    executed, result = _executed(kept_store, monkeypatch, window=window)
    assert not any('"feedback"' in sql for sql in executed)
    assert not any(f'"{unit_sums.TABLE}"' in sql for sql in executed)
    assert sum(bool(re.search(GROUPS_UNITS, sql)) for sql in executed) == 1
    assert result.srm.crossover_units == 5


def test_the_kept_units_equal_the_raw_rows_grouped_now_after_every_ingest(tmp_path: Path) -> None:
    """unit_sums after ingests of predictions and feedback in any order equals the raw predictions and feedback
    grouped by hand (pandas), crossed units included, and a whole rebuild."""
    store = _ingested(tmp_path)
    with store.connect(read_only=True) as con:
        kept = con.execute(f"SELECT * FROM {unit_sums.TABLE} ORDER BY unit, arm").df()
        p = con.execute("SELECT trace_id, ts, arm, coalesce(unit_id, trace_id) AS unit, region FROM predictions "
                        "WHERE arm IS NOT NULL").df()  # fmt: skip
        f = con.execute("SELECT trace_id, type, value FROM feedback").df()
    f["thumb"] = (f["type"] == "thumb") & f["value"].notna()
    f["up"] = f["thumb"] & (f["value"] > 0)
    f["dwell"] = (f["type"] == "dwell") & f["value"].notna()
    f["dwell_value"] = f["value"].where(f["dwell"], 0.0)
    per_trace = f.groupby("trace_id")[["thumb", "up", "dwell", "dwell_value"]].sum()
    rows = p.join(per_trace, on="trace_id").fillna({"thumb": 0, "up": 0, "dwell": 0, "dwell_value": 0.0})
    rows = rows.sort_values("ts")
    by_hand = rows.groupby(["unit", "arm"]).agg(
        first=("ts", "min"), last=("ts", "max"), region=("region", "first"), m_thumb=("thumb", "sum"),
        y_thumb=("up", "sum"), m_dwell=("dwell", "sum"), y_dwell=("dwell_value", "sum"),
    ).reset_index().sort_values(["unit", "arm"]).reset_index(drop=True)  # fmt: skip
    arms = by_hand.groupby("unit")["arm"].transform("count")
    by_hand["crossed"] = (arms > 1) & (by_hand["arm"] == by_hand.groupby("unit")["arm"].transform("min"))
    assert by_hand["crossed"].sum() > 10 and len(kept) == len(by_hand)
    assert kept["unit"].tolist() == by_hand["unit"].tolist() and kept["arm"].tolist() == by_hand["arm"].tolist()
    assert kept["crossed"].tolist() == by_hand["crossed"].tolist()
    assert kept["seg__region"].tolist() == by_hand["region"].tolist()
    assert (kept["first"] == by_hand["first"]).all() and (kept["last"] == by_hand["last"]).all()
    assert kept["m__thumbs_up_rate"].astype(int).tolist() == by_hand["m_thumb"].astype(int).tolist()
    assert kept["y__thumbs_up_rate"].tolist() == by_hand["y_thumb"].astype(float).tolist()
    assert kept["m__dwell_time"].astype(int).tolist() == by_hand["m_dwell"].astype(int).tolist()
    np.testing.assert_allclose(kept["y__dwell_time"], by_hand["y_dwell"], rtol=1e-12)
    with store.connect(read_only=False) as con:
        unit_sums.rebuild(con, unit_sums.segment_columns(con))
        whole = con.execute(f"SELECT * FROM {unit_sums.TABLE} ORDER BY unit, arm").df()
    pd.testing.assert_frame_equal(kept, whole, check_dtype=False, rtol=1e-12)


def test_stale_unit_sums_are_not_read_and_the_next_ingest_rebuilds_them(tmp_path: Path) -> None:
    """Roles changed behind the ingest, or a unit_sums of another shape: the analysis groups the predictions
    (per-trace sums, same result); the next ingest rebuilds the unit sums and the analysis reads them again."""
    store = _ingested(tmp_path)
    args = {"metrics": EVERY_METRIC, "guardrails": []}
    assert _path(analyse_store(store, ABTestRequest(**args)).to_dict()) == "unit sums"
    with store.connect(read_only=False) as con:  # a second sensitive role, written behind the ingest
        write_meta(con, "roles", {"predictions": {"sensitive": ["region", "model_version"]}})
    stale = analyse_store(store, ABTestRequest(**args)).to_dict()
    assert _path(stale) == "trace sums"
    assert any(s["segment"] == "model_version" for s in stale["srm"]["segments"])  # the new role is checked
    _same(stale, _joined_result(store, tmp_path, args))
    late = pd.DataFrame({"trace_id": ["t1"], "ts": [pd.Timestamp("2026-04-20", tz="UTC")], "kind": ["explicit"],
                         "type": ["other"], "value": [1.0]})  # fmt: skip
    ingest_frame(store, late, "feedback")
    assert _path(analyse_store(store, ABTestRequest(**args)).to_dict()) == "unit sums"
    with store.connect(read_only=False) as con:  # a table of an older shape (no crossed mark)
        con.execute(f"ALTER TABLE {unit_sums.TABLE} DROP COLUMN crossed")
    old_shape = analyse_store(store, ABTestRequest(**args)).to_dict()
    assert _path(old_shape) == "trace sums"
    _same(old_shape, _joined_result(store, tmp_path, args))


def test_unit_sums_of_another_version_are_rebuilt_alone_and_the_copies_still_read(tmp_path: Path) -> None:
    """A store whose unit sums an older build wrote (its stamp names no or another unit-sums version): the
    whole experiment groups the predictions from the kept per-trace copies (still current: no rebuild of the
    copies), and the next ingest rebuilds the unit sums alone, which the analysis then reads again."""
    store = _ingested(tmp_path)
    args = {"metrics": EVERY_METRIC, "guardrails": []}
    with store.connect(read_only=False) as con:
        stamp = read_meta(con, "trace_feedback")
        write_meta(con, "trace_feedback", {k: v for k, v in stamp.items() if k != "units_version"})
        con.execute(f"UPDATE {unit_sums.TABLE} SET seg__region = 'stale'")
    assert _kept_is_used(store)  # the per-trace copies are current
    older = analyse_store(store, ABTestRequest(**args)).to_dict()
    assert _path(older) == "trace sums" and "stale" not in str(older["srm"]["segments"])
    _same(older, _joined_result(store, tmp_path, args))
    late = pd.DataFrame({"trace_id": ["t1"], "ts": [pd.Timestamp("2026-04-20", tz="UTC")], "kind": ["explicit"],
                         "type": ["other"], "value": [1.0]})  # fmt: skip
    ingest_frame(store, late, "feedback")
    with store.connect(read_only=True) as con:
        assert read_meta(con, "trace_feedback")["units_version"] == unit_sums.VERSION
        assert con.execute(f"SELECT count(*) FROM {unit_sums.TABLE} WHERE seg__region = 'stale'").fetchone() == (0,)
    rebuilt = analyse_store(store, ABTestRequest(**args)).to_dict()
    assert _path(rebuilt) == "unit sums"
    _same(rebuilt, older)


def _joined_result(store: Store, tmp_path: Path, args: dict[str, Any]) -> dict[str, Any]:
    """The analysis of a copy of ``store`` without kept sums (the feedback joined), its path checked and taken out."""
    result = analyse_store(_joined(store, tmp_path), ABTestRequest(**args)).to_dict()
    assert _path(result) == "feedback join"
    return result


def test_an_arm_without_observations_of_a_metric_gives_the_joins_result(tmp_path: Path) -> None:
    """One arm never got a dwell event: no unit moments for it on either path (with CUPED too)."""
    store = Store(tmp_path / "empty-arm.duckdb")
    rng = np.random.default_rng(3)
    n = 1200
    predictions = pd.DataFrame({
        "trace_id": [f"t{i}" for i in range(n)],
        "ts": pd.Timestamp("2026-05-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10 * 86400, n), unit="s"),
        "model_version": "v1", "prediction": 0, "score": 0.5,
        "arm": np.where(np.arange(n) % 2 == 0, "champion", "challenger"), "unit_id": [f"u{i % 300}" for i in range(n)],
    })  # fmt: skip
    pre = predictions.iloc[:200].assign(trace_id=[f"pre{i}" for i in range(200)], arm=None,
                                        ts=pd.Timestamp("2026-04-25", tz="UTC"))  # fmt: skip
    traces = rng.integers(0, n, 3000)
    kinds = np.where(traces % 2 == 0, rng.choice(["thumb", "dwell"], 3000), "thumb")  # challenger: thumbs only
    feedback = pd.DataFrame({"trace_id": [f"t{i}" for i in traces], "ts": pd.Timestamp("2026-05-12", tz="UTC"),
                             "kind": "explicit", "type": kinds,
                             "value": rng.integers(0, 40, 3000).astype(float)})  # fmt: skip
    ingest_frame(store, pd.concat([pre, predictions], ignore_index=True), "predictions")
    ingest_frame(store, feedback, "feedback")
    for cuped in (False, True):
        args = {"metrics": ["thumbs_up_rate"], "guardrails": ["dwell_time"], "cuped": cuped}
        kept = analyse_store(store, ABTestRequest(**args)).to_dict()
        join = analyse_store(_joined(store, tmp_path), ABTestRequest(**args)).to_dict()
        assert (_path(kept), _path(join)) == ("unit sums", "feedback join")
        _same(kept, join)


@pytest.mark.parametrize(("south_first", "later"), [(False, False), (True, False), (False, True), (True, True)])
def test_a_units_first_exposure_on_a_tied_timestamp_is_the_smaller_trace_ids_in_any_row_order(
    tmp_path: Path, south_first: bool, later: bool
) -> None:
    """Unit u0's first two predictions share a timestamp: t0 in one region and device, t1 in the other region
    and the other device, the least region on one row and the least device on the other. Its first-exposure
    segments are t0's (the smaller trace id), whichever values t0 has and in whichever order the rows were
    written, in the kept unit sums, in a window's grouping of the predictions and in the feedback join, and
    for every choice of segments (both, one, in another order), so the SRM's segment counts agree.
    (``arg_min(region, ts)`` kept the first row met; the least (ts, segments…) depended on the segments named.)

    ``later``: t1 comes in a later ingest, with a prediction of u1 before its first (south, web: it becomes
    u1's first exposure) and one of challenger unit u2 in the champion arm (a crossed unit); that ingest
    recomputes the units it touched."""
    tied = pd.Timestamp("2026-04-01 23:59:56.400", tz="UTC")
    rows = [("south", "mobile"), ("north", "web")] if south_first else [("north", "web"), ("south", "mobile")]
    n = 40
    predictions = pd.DataFrame({
        "trace_id": [f"t{i}" for i in range(n + 2)],
        "ts": [tied, tied, *(tied + pd.Timedelta(minutes=i + 1) for i in range(n))],
        "model_version": "v1", "prediction": 0, "score": 0.5,
        "arm": ["champion", "champion", *(["champion", "challenger"] * (n // 2))],
        "unit_id": ["u0", "u0", *(f"u{1 + i % 20}" for i in range(n))],  # u0's later rows: none; u1…u20 twice
        "region": [rows[0][0], rows[1][0], *(["north", "south"] * (n // 2))],
        "device": [rows[0][1], rows[1][1], *(["mobile", "web"] * (n // 2))],
    })  # fmt: skip
    feedback = pd.DataFrame({"trace_id": ["t0", "t1", "t5"], "ts": pd.Timestamp("2026-04-03", tz="UTC"),
                             "kind": "explicit", "type": "thumb", "value": [1.0, 0.0, 1.0]})  # fmt: skip
    store = Store(tmp_path / "tied.duckdb")
    roles = parse_roles('[predictions]\nsensitive = ["region"]\ncategorical = ["device"]\n')
    if later:
        second = pd.DataFrame({
            "trace_id": ["t1", "x1", "x2"], "ts": [tied, tied - pd.Timedelta(minutes=1), tied + pd.Timedelta(days=1)],
            "model_version": "v1", "prediction": 0, "score": 0.5, "arm": "champion", "unit_id": ["u0", "u1", "u2"],
            "region": [rows[1][0], "south", "north"], "device": [rows[1][1], "web", "mobile"],
        })  # fmt: skip
        ingest_frame(store, predictions.drop(index=1), "predictions", roles=roles)
        ingest_frame(store, feedback, "feedback")
        ingest_frame(store, second, "predictions")
    else:
        ingest_frame(store, predictions, "predictions", roles=roles)
        ingest_frame(store, feedback, "feedback")
    with store.connect(read_only=True) as con:
        kept = con.execute(f"SELECT seg__region, seg__device, first FROM {unit_sums.TABLE} WHERE unit = 'u0'")
        kept = kept.fetchall()
    assert kept == [(rows[0][0], rows[0][1], tied.to_pydatetime())]
    # champion units at first exposure: u1, u3, …, u19 in north on mobile (later: u1 in south on web, u2 crossed
    # in north on mobile), and u0 as t0; challenger units: ten in south on web
    others = {"north": 10, "south": 1 if later else 0, "mobile": 10, "web": 1 if later else 0}
    expected = {}
    for column, value in (("region", "north"), ("region", "south"), ("device", "mobile"), ("device", "web")):
        champion = others[value] + (value in rows[0])
        expected[(column, value)] = {"champion": champion, "challenger": 10 if value in ("south", "web") else 0}
    window = Window(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), None)
    for segments in (("region", "device"), ("device",), ("device", "region")):
        args = {"metrics": ["thumbs_up_rate"], "guardrails": [], "settings": ABTestSettings(segments=segments)}
        results = {
            "unit sums": analyse_store(store, ABTestRequest(**args)).to_dict(),
            "trace sums": analyse_store(store, ABTestRequest(window=window, **args)).to_dict(),
            "feedback join": analyse_store(_joined(store, tmp_path), ABTestRequest(**args)).to_dict(),
        }
        for path, result in results.items():
            assert _path(result) == path
            counts = {(s["segment"], s["value"]): s["counts"] for s in result["srm"]["segments"]}
            assert counts == {k: v for k, v in expected.items() if k[0] in segments}, (path, segments)
            assert result["srm"]["crossover_units"] == (1 if later else 0), path
