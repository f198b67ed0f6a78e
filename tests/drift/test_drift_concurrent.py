"""Drift's engine queries side by side on cursors give what the one-query-at-a-time path gave."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.helpers.demo_stores import copy_demo
from workbench.core.window import Window
from workbench.demo.scenario import Scenario
from workbench.drift import classifier as drift_classifier
from workbench.drift import files as drift_files
from workbench.drift import queries as q
from workbench.drift import store as drift_store
from workbench.drift.files import compare_files
from workbench.drift.request import DriftRequest
from workbench.drift.store import compare, store_features
from workbench.sources import cursors
from workbench.sources.files import file_table
from workbench.sources.store_queries import filtered_predictions
from workbench.stats.drift import DriftSettings

REFERENCE = Window(end=dt.datetime(2026, 1, 11, tzinfo=dt.UTC))
CURRENT = Window(start=dt.datetime(2026, 1, 20, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    target = tmp_path_factory.mktemp("drift-concurrent") / "workbench.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=20_000, days=30), target)[0]


def _assert_same_moments(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for f in expected:
        # quantile_cont, min and max are order statistics: the same numbers; mean and std are float sums
        # whose order DuckDB's threads choose (the single query varies in the last bits from run to run too)
        assert (
            got[f]["q"] == expected[f]["q"] and got[f]["lo"] == expected[f]["lo"] and got[f]["hi"] == expected[f]["hi"]
        )
        for k in ("m", "s"):
            assert got[f][k] == pytest.approx(expected[f][k], rel=1e-12, abs=1e-12), (f, k)


def test_moments_in_parts_on_cursors_equal_one_query_of_every_column(store):
    with store.ibis() as con:
        numeric, categorical = store_features(con)
        view = cursors.as_view(filtered_predictions(con, REFERENCE), "drift_reference")
        assert cursors.has_cursors(view) and not cursors.has_cursors(view.select(*numeric))
        moments, sizes = q.moments_and_sizes(view, numeric, True, numeric + categorical)
        # a projection is not a named relation: the whole aggregate runs as one query (other engines do this)
        single, single_sizes = q.moments_and_sizes(view.select(*view.columns), numeric, True, numeric + categorical)
        assert sizes == single_sizes == q.window_sizes(view, numeric + categorical)
        _assert_same_moments(moments, single)
        for f in numeric:  # and the engine's quantiles are numpy's (linear interpolation)
            values = view.select(x=view[f].cast("float64")).to_pyarrow().column("x").to_numpy(zero_copy_only=False)
            values = values[~np.isnan(values)]
            expected = np.quantile(values, [q.GRID_TAIL, *q.DECILES, 1 - q.GRID_TAIL])
            np.testing.assert_allclose(moments[f]["q"], expected, rtol=1e-12, atol=1e-12)


def test_a_cursor_sees_the_files_and_windows_temporary_views_and_is_closed_after(store, tmp_path):
    path = tmp_path / "x.parquet"
    pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "c": ["a", "b", "b", None]}).to_parquet(path)
    with file_table(path) as table:
        with cursors.on_cursor(table) as mine:
            assert mine is not table and mine.count().execute() == 4
            assert q.window_sizes(mine, ["x", "c"]) == q.window_sizes(table, ["x", "c"]) == {
                "rows": 4, "n": {"x": 3, "c": 3}
            }  # fmt: skip
            cursor = mine._find_backend().con
        with pytest.raises(Exception, match=r"(?i)closed"):
            cursor.execute("SELECT 1")
    with store.ibis() as con:
        view = cursors.as_view(filtered_predictions(con, CURRENT), "drift_current")
        with cursors.on_cursor(view) as mine:
            assert int(mine.count().execute()) == int(view.count().execute()) > 0
    # no cursor is left holding the store: it opens for writing at once
    with store.connect(read_only=False) as con:
        con.execute("SELECT 1")


def _no_early_start(*args, **kwargs):
    return None  # the classifier then runs after the statistics, as before


def test_the_classifier_started_beside_the_statistics_gives_the_classifier_run_after_them(store, monkeypatch):
    settings = DriftSettings(ks_exact_max_rows=1000)  # the grid path: every engine query of the store mode
    beside = compare(store, DriftRequest(REFERENCE, CURRENT), settings, use_cache=False)
    monkeypatch.setattr(drift_store, "start_domain_classifier", _no_early_start)
    after = compare(store, DriftRequest(REFERENCE, CURRENT), settings, use_cache=False)
    assert beside.multivariate is not None and beside.multivariate["auc"] is not None
    assert beside.multivariate == after.multivariate
    assert [f.to_dict() for f in beside.features] == [f.to_dict() for f in after.features]
    assert beside.prediction_drift == after.prediction_drift and beside.verdict_text == after.verdict_text


def test_a_feature_without_a_verdict_makes_the_classifier_run_again_on_the_others(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    n = 3000
    ref = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(0, 1, n), "gone": rng.normal(0, 1, n)})
    cur = pd.DataFrame({"a": rng.normal(0.5, 1, n), "b": rng.normal(0, 1, n), "gone": np.full(n, np.nan)})
    paths = [tmp_path / "ref.parquet", tmp_path / "cur.parquet"]
    ref.to_parquet(paths[0])
    cur.to_parquet(paths[1])
    calls = []
    real = drift_classifier._classify

    def spy(ref_table, cur_table, numeric, *rest):
        calls.append(list(numeric))
        return real(ref_table, cur_table, numeric, *rest)

    monkeypatch.setattr(drift_classifier, "_classify", spy)
    beside = compare_files(DriftRequest(*paths))
    assert beside.feature("gone").status != "ok"
    assert calls == [["a", "b", "gone"], ["a", "b"]]  # the early run on every feature, then on those with a verdict
    monkeypatch.setattr(drift_files, "start_domain_classifier", _no_early_start)
    after = compare_files(DriftRequest(*paths))
    assert beside.multivariate == after.multivariate and calls[-1] == ["a", "b"]
    assert [f.name for f in beside.features] == ["a", "b", "gone"]


def test_a_new_window_against_the_cached_profile_equals_a_fresh_profile(store):
    settings = DriftSettings(ks_exact_max_rows=1000)
    first = compare(
        store,
        DriftRequest(REFERENCE, Window(start=dt.datetime(2026, 1, 24, tzinfo=dt.UTC)), multivariate=False),
        settings,
    )
    cached = compare(store, DriftRequest(REFERENCE, CURRENT, multivariate=False), settings)
    fresh = compare(store, DriftRequest(REFERENCE, CURRENT, multivariate=False), settings, use_cache=False)
    assert first.summary["ks_method"] == cached.summary["ks_method"] == "grid"
    for a, b in zip(cached.features, fresh.features, strict=True):
        da, db = a.to_dict(), b.to_dict()
        assert da.keys() == db.keys()
        for key in da:  # the cached profile's mean/std are a float sum in DuckDB's thread order
            if isinstance(da[key], float):
                assert da[key] == pytest.approx(db[key], rel=1e-9, abs=1e-12), (a.name, key)
            else:
                assert da[key] == db[key], (a.name, key)


def test_the_classifier_sample_kept_in_the_profile_gives_the_sample_drawn_from_the_window(store, monkeypatch):
    settings = DriftSettings(ks_exact_max_rows=1000)
    with store.connect(read_only=False) as con:
        con.execute("DROP TABLE IF EXISTS drift_profiles")
    first = compare(store, DriftRequest(REFERENCE, CURRENT), settings)  # computes the profile with the sample
    with store.ibis() as con:
        numeric, categorical = store_features(con)
        _, cached, _, ref_table = drift_store._lookup(con, REFERENCE, [*numeric, "score"], categorical, settings, True)
        kept = drift_store._cached_sample(cached, numeric + categorical, settings)
        drawn = drift_classifier.classifier_sample(ref_table, numeric + categorical, settings)
    pd.testing.assert_frame_equal(kept, drawn)
    assert drift_store._cached_sample(cached, numeric, settings) is None  # other columns: drawn again
    again = compare(store, DriftRequest(REFERENCE, CURRENT), settings)  # from the cache, sample included
    assert again.multivariate == first.multivariate and again.multivariate["auc"] is not None


def test_columns_pulled_side_by_side_come_in_order_and_equal_the_ones_pulled_one_at_a_time(store):
    with store.ibis() as con:
        numeric, _ = store_features(con)
        view = cursors.as_view(filtered_predictions(con, CURRENT), "drift_current")
        pulled = list(q.pulled_in_order(view, numeric))
        assert [f for f, _ in pulled] == numeric
        for f, values in pulled:
            np.testing.assert_array_equal(values, q.pull_sorted(view, f), err_msg=f)
        without, _ = q.moments_and_sizes(view, numeric, False, None)  # no quantiles: one query
        single, _ = q.moments_and_sizes(view.select(*view.columns), numeric, False, None)
        assert without.keys() == single.keys() and all("q" not in entry for entry in without.values())
        for f in numeric:
            assert without[f]["lo"] == single[f]["lo"] and without[f]["hi"] == single[f]["hi"]
            assert without[f]["m"] == pytest.approx(single[f]["m"], rel=1e-12, abs=1e-12)
