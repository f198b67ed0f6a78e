"""Drift's batched engine queries (one query for every feature) agree with the per-feature queries they replaced."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest

from tests.helpers.demo_stores import copy_demo
from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.demo.scenario import Scenario
from workbench.drift import profile_cache
from workbench.drift import profile_cache as drift_cache
from workbench.drift import queries as q
from workbench.drift.engine import compare_tables
from workbench.drift.over_time import drift_over_time
from workbench.drift.request import DriftRequest, OverTimeRequest
from workbench.drift.store import compare, store_features
from workbench.sources import cursors
from workbench.sources.store_queries import filtered_predictions
from workbench.stats.drift import DriftSettings, merged_edges

SETTINGS = DriftSettings()
EMPTY = Window(start=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), end=dt.datetime(2020, 2, 1, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    target = tmp_path_factory.mktemp("drift-batched") / "workbench.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=20_000, days=30), target)[0]


def _bins(values: np.ndarray, grid: int) -> tuple[np.ndarray, dict[str, float]]:
    edges = merged_edges(np.nanquantile(values, np.linspace(0.1, 0.9, 9)))
    return edges, q.grid_spec([float(np.nanquantile(values, 0.001)), float(np.nanquantile(values, 0.999))], grid)


def _reference_bins(table, numeric: list[str], grid: int) -> dict:
    """Each feature's decile edges and fine grid from the engine's moments and quantiles, as the profile makes them."""
    moments = q.numeric_moments(table, numeric, with_quantiles=True)
    return {f: (q.reference_edges(moments[f], None), q.grid_spec(q.grid_quantiles(moments[f], None), grid))
            for f in numeric}  # fmt: skip


def test_one_query_for_all_numeric_features_gives_each_features_counts_exactly():
    rng = np.random.default_rng(11)
    n = 6000
    frame = pd.DataFrame(
        {
            "skewed": np.concatenate([rng.lognormal(2, 1, n - 3), [np.nan, -1e9, 1e9]]),
            "ties": np.floor(rng.normal(5, 2, n)),
            "whole": rng.integers(0, 7, n),  # an integer column: cast to float like the per-feature query
            "constant": np.full(n, 3.0),
            "gappy": np.where(rng.random(n) < 0.3, np.nan, rng.normal(0, 1, n)),
        }
    )
    table = ibis.duckdb.connect().create_table("t", frame)
    bins = {c: _bins(frame[c].to_numpy(dtype=float), 997) for c in frame.columns}
    together = q.numeric_counts_many(table, bins)
    for column, (edges, spec) in bins.items():
        alone = q.numeric_counts(table, column, edges, spec)
        for key in ("bin_counts", "grid_counts"):
            np.testing.assert_array_equal(together[column][key], alone[key], err_msg=f"{column} {key}")
        np.testing.assert_allclose(together[column]["grid_sums"], alone["grid_sums"], rtol=1e-12, atol=1e-6)
        assert together[column]["grid_counts"].sum() == frame[column].notna().sum()


def test_the_per_chunk_counts_of_every_feature_in_one_query_equal_each_chunk_counted_alone():
    """Drift over time's stacked count (one branch per feature, grouped by chunk) gives each chunk's arrays of
    :func:`numeric_counts` on that chunk's rows alone."""
    rng = np.random.default_rng(12)
    n = 5000
    frame = pd.DataFrame({
        "chunk": rng.integers(0, 4, n),
        "skewed": np.concatenate([rng.lognormal(2, 1, n - 3), [np.nan, -1e9, 1e9]]),
        "whole": rng.integers(0, 7, n),
        "gappy": np.where(rng.random(n) < 0.3, np.nan, rng.normal(0, 1, n)),
    })  # fmt: skip
    con = ibis.duckdb.connect()
    table = con.create_table("t", frame)
    features = ["skewed", "whole", "gappy"]
    bins = {c: _bins(frame[c].to_numpy(dtype=float), 97) for c in features}
    together = q.numeric_counts_by(table, bins, lambda t: t.chunk)
    for column, (edges, spec) in bins.items():
        assert sorted(together[column]["group"].unique()) == [0, 1, 2, 3]
        for chunk, part in together[column].groupby("group"):
            got = q.split_counts(part, len(edges), int(spec["bins"]))
            alone = q.numeric_counts(table.filter(table.chunk == int(chunk)), column, edges, spec)
            for key in ("bin_counts", "grid_counts"):
                np.testing.assert_array_equal(got[key], alone[key], err_msg=f"{column} {chunk} {key}")
            np.testing.assert_allclose(got["grid_sums"], alone["grid_sums"], rtol=1e-12, atol=1e-6)
            assert got["grid_counts"].sum() == frame.loc[frame["chunk"] == chunk, column].notna().sum()


def test_one_query_for_all_categorical_features_gives_each_features_value_counts(store):
    with store.ibis() as con:
        numeric, categorical = store_features(con)
        table = filtered_predictions(con, None)
        together = q.categorical_counts_many(table, [*categorical, numeric[0]])
        for column in [*categorical, numeric[0]]:
            frame = q.categorical_counts(table, column)
            alone = dict(zip(frame["value"].astype(str), frame["n"].astype(int).tolist(), strict=True))
            assert together[column] == alone
    assert categorical and all(together[c] for c in categorical)


def test_the_per_chunk_value_counts_of_every_categorical_feature_in_one_query_equal_each_counted_alone(store):
    """Drift over time's stacked query: each feature's (chunk, value, n) rows as its own grouped query gives them."""
    from workbench.sources.chunks import chunk_key

    with store.ibis() as con:
        _, categorical = store_features(con)
        keyed = chunk_key(filtered_predictions(con, None), "day")
        together = q.categorical_counts_by(keyed, categorical, lambda t: t.chunk)
        for column in categorical:
            alone = q.categorical_counts(keyed, column, by=lambda t: t.chunk)
            order = ["group", "value"]
            pd.testing.assert_frame_equal(together[column].sort_values(order, ignore_index=True),
                                          alone.sort_values(order, ignore_index=True))  # fmt: skip
            assert together[column]["group"].nunique() == 30 and together[column]["n"].sum() > 10_000


def test_store_windows_give_the_same_statistics_as_the_per_feature_path(store):
    # the batched compare against the statistics recomputed with the per-feature queries, feature by feature
    reference = Window(end=dt.datetime(2026, 1, 11, tzinfo=dt.UTC))
    current = Window(start=dt.datetime(2026, 1, 24, tzinfo=dt.UTC))
    settings = DriftSettings(ks_exact_max_rows=1000)  # the grid path: counts come from the engine
    batched = compare(store, DriftRequest(reference, current, multivariate=False), settings, use_cache=False)
    with store.ibis() as con:
        numeric, _ = store_features(con)
        ref = filtered_predictions(con, reference)
        cur = filtered_predictions(con, current)
        for f in numeric:  # the per-feature query on the profile's own bins equals the batched counts
            entry = q.numeric_moments(ref, [f], with_quantiles=True)[f]
            edges, spec = q.reference_edges(entry, None), q.grid_spec(q.grid_quantiles(entry, None), 10_000)
            alone = q.numeric_counts(cur, f, edges, spec)
            shown = batched.feature(f).distribution
            assert shown["bins_current"] == alone["bin_counts"].tolist()
        # named views, as the store's windows: the reference's values are pulled for its moments and quantiles
        views = cursors.as_view(ref, "score_reference"), cursors.as_view(cur, "score_current")
        score, *_ = compare_tables(*views, ["score"], [], settings)
        # unnamed tables (as any other engine's): moments, quantiles and counts all from the engine
        in_engine, *_ = compare_tables(ref, cur, ["score"], [], settings)
    assert batched.prediction_drift["score"] == score[0].to_dict()
    assert batched.summary["ks_method"] == "grid"
    # the same bins and counts; the std (Wasserstein's normaliser) is np.std in one, stddev_pop in the other
    _same_but_rounding(score[0].to_dict(), in_engine[0].to_dict())


def _same_but_rounding(pulled: Any, engine: Any, where: str = "") -> None:
    """Equal results, floats (in dicts and lists too) to 1e-12 relative: the pulled path's np.std and np.quantile
    against the engine's stddev_pop and quantile_cont, which can differ in the last bit."""
    if isinstance(pulled, dict):
        assert pulled.keys() == engine.keys(), where
        for key, value in pulled.items():
            _same_but_rounding(value, engine[key], f"{where}.{key}")
    elif isinstance(pulled, list):
        assert len(pulled) == len(engine), where
        for i, (a, b) in enumerate(zip(pulled, engine, strict=True)):
            _same_but_rounding(a, b, f"{where}[{i}]")
    elif isinstance(pulled, float):
        assert engine == pytest.approx(pulled, rel=1e-12, abs=1e-15), where
    else:
        assert engine == pulled, where


@pytest.mark.parametrize("exact_max_rows", [1000, 2_000_000])
def test_nan_values_are_left_out_of_the_moments_alike_pulled_or_in_the_engine(exact_max_rows):
    """NaN (not NULL) in the reference: pulled values drop it, and so do the engine's moments and quantiles, so a
    table of another engine gets the same statistics and no false 'constant' warning (its std was NaN → 0)."""
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x": rng.normal(0, 1, 3000), "w": np.arange(3000) >= 1500})
    con = ibis.duckdb.connect()
    con.create_table("t", frame)
    con.raw_sql("INSERT INTO t SELECT 'NaN'::DOUBLE, i % 2 = 0 FROM range(40) r(i)")
    table = con.table("t")
    settings = DriftSettings(ks_exact_max_rows=exact_max_rows)
    windows = {"reference": table.filter(~table.w), "current": table.filter(table.w)}
    views = [cursors.as_view(w, f"nan_{name}") for name, w in windows.items()]
    pulled, *_ = compare_tables(*views, ["x"], [], settings)
    in_engine, *_ = compare_tables(*windows.values(), ["x"], [], settings)
    assert not pulled[0].warnings and pulled[0].wasserstein is not None
    assert pulled[0].ks_method == ("grid" if exact_max_rows == 1000 else "exact")
    _same_but_rounding(pulled[0].to_dict(), in_engine[0].to_dict())


def test_the_score_computed_with_the_features_equals_its_own_comparison_in_exact_mode_too(store):
    reference = Window(end=dt.datetime(2026, 1, 11, tzinfo=dt.UTC))
    current = Window(start=dt.datetime(2026, 1, 24, tzinfo=dt.UTC))
    batched = compare(store, DriftRequest(reference, current, multivariate=False), use_cache=False)
    assert batched.summary["ks_method"] == "exact"
    with store.ibis() as con:
        score, *_ = compare_tables(
            filtered_predictions(con, reference), filtered_predictions(con, current), ["score"], [], SETTINGS
        )
    assert batched.prediction_drift["score"] == score[0].to_dict()
    assert "score" not in [f.name for f in batched.features]


def test_an_empty_reference_window_gives_no_verdict_not_a_crash(store):
    result = compare(store, DriftRequest(EMPTY, None, multivariate=False))
    assert result.verdict == "insufficient"
    assert result.summary["n_features"] == 0
    assert any("no values in the reference window" in w for w in result.warnings)
    json.dumps(result.to_dict(), allow_nan=False)  # no NaN anywhere


def test_an_empty_reference_fingerprint_has_zero_rows_and_no_ingest(store):
    with store.ibis() as con:
        assert profile_cache.reference_fingerprint(filtered_predictions(con, EMPTY)) == {"rows": 0, "last_ingest": None}


def test_drift_over_time_against_an_empty_reference_is_one_clear_error(store):
    with pytest.raises(InputError, match=r"^the reference window \(Jan 1 – Jan 31\) has no predictions$"):
        drift_over_time(store, OverTimeRequest(EMPTY, chunk="week"))


def _indicator_sum(x, edges):
    """The decile expression the count query used before the binary search: Σ_j 1[x ≥ e_j]."""
    return sum(((x >= float(e)).cast("int64") for e in edges), ibis.literal(0, "int64"))


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 8, 9, 12])
def test_the_binary_search_decile_equals_the_sum_of_indicators_and_searchsorted(k):
    # values on every edge, just below and above it, far outside, and ties: the three must agree row by row
    rng = np.random.default_rng(k)
    edges = np.unique(np.round(rng.normal(0, 3, k), 1))
    values = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf),
                             [-1e300, 1e300, 0.0], np.round(rng.normal(0, 4, 500), 1)])  # fmt: skip
    table = ibis.duckdb.connect().create_table("t", pd.DataFrame({"x": values}))
    _, tree = q._bin_keys(table.x, edges, {"lo": -10.0, "width": 0.1, "bins": 200})
    frame = table.select(table.x, tree=tree, old=_indicator_sum(table.x, edges)).to_pyarrow()
    x = frame.column("x").to_numpy()
    np.testing.assert_array_equal(frame.column("tree").to_numpy(), frame.column("old").to_numpy())
    np.testing.assert_array_equal(frame.column("tree").to_numpy(), np.searchsorted(edges, x, side="right"))


def test_the_count_query_gives_what_the_indicator_sum_query_gave_on_a_small_store(store):
    reference = Window(end=dt.datetime(2026, 1, 11, tzinfo=dt.UTC))
    with store.ibis() as con:
        numeric, _ = store_features(con)
        ref = filtered_predictions(con, reference)
        bins = _reference_bins(ref, numeric, 10_000)
        new = q.numeric_counts_many(ref, bins)
        for f, (edges, spec) in bins.items():
            t = ref.filter(ref[f].notnull() & ~ref[f].cast("float64").isnan())
            x = t[f].cast("float64")
            key, _ = q._bin_keys(x, edges, spec)
            old = t.group_by(k=key, d=_indicator_sum(x, edges)).aggregate(n=t.count(), s=x.sum()).execute()
            expected = q.split_counts(old, len(edges), int(spec["bins"]))
            for name in ("bin_counts", "grid_counts"):
                np.testing.assert_array_equal(new[f][name], expected[name], err_msg=f"{f} {name}")
            np.testing.assert_allclose(new[f]["grid_sums"], expected["grid_sums"], rtol=1e-12, atol=1e-9)


def test_the_compiled_count_query_gives_what_the_ibis_expression_gives(store):
    # named tables and views run the SQL compiled once against a placeholder; other expressions the Ibis one
    with store.ibis() as con:
        numeric, _ = store_features(con)
        view = cursors.as_view(filtered_predictions(con, Window(end=dt.datetime(2026, 1, 11, tzinfo=dt.UTC))), "v")
        bins = _reference_bins(view, numeric, 500)
        default = con.con.execute("SELECT current_setting('perfect_ht_threshold')").fetchall()[0][0]
        for table in (view, con.table("predictions")):
            templates: dict[str, str] = {}
            compiled = q.numeric_counts_many(table, bins, templates)
            # the count query's larger perfect-hash limit is its own: the connection's setting is back after it
            assert con.con.execute("SELECT current_setting('perfect_ht_threshold')").fetchall()[0][0] == default
            expression = q.numeric_counts_many(table.select(*numeric), bins)  # not a named table: Ibis path
            assert len(templates) == 1 and q._SOURCE in next(iter(templates.values()))["sql"]
            for f in numeric:
                for name in ("bin_counts", "grid_counts"):
                    np.testing.assert_array_equal(compiled[f][name], expression[f][name], err_msg=f"{f} {name}")
                np.testing.assert_allclose(compiled[f]["grid_sums"], expression[f]["grid_sums"], rtol=1e-12, atol=1e-9)


def test_a_new_window_runs_the_count_query_kept_in_the_cached_profile(store, monkeypatch):
    reference = Window(end=dt.datetime(2026, 1, 11, tzinfo=dt.UTC))
    settings = DriftSettings(ks_exact_max_rows=1000)  # the grid path
    first = compare(
        store,
        DriftRequest(reference, Window(start=dt.datetime(2026, 1, 24, tzinfo=dt.UTC)), multivariate=False),
        settings,
    )
    fresh = compare(
        store,
        DriftRequest(reference, Window(start=dt.datetime(2026, 1, 20, tzinfo=dt.UTC)), multivariate=False),
        settings,
        use_cache=False,
    )
    q._TEMPLATES.clear()  # as in a new process: the query can only come from the profile in the store

    def no_compile(*args, **kwargs):
        raise AssertionError("the count query was compiled again")

    monkeypatch.setattr(q, "_counts_union", no_compile)
    again = compare(
        store,
        DriftRequest(reference, Window(start=dt.datetime(2026, 1, 20, tzinfo=dt.UTC)), multivariate=False),
        settings,
    )
    assert first.summary["ks_method"] == again.summary["ks_method"] == "grid"
    assert [f.to_dict() for f in again.features] == [f.to_dict() for f in fresh.features]


def test_a_cached_count_query_runs_only_with_this_machines_signature(store, monkeypatch, tmp_path):
    # a store can be uploaded from anywhere: SQL text in its profile cache must not run unless we signed it
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with store.ibis() as con:
        numeric, _ = store_features(con)
        table = con.table("predictions")
        bins = _reference_bins(table, numeric, 500)
        signed: dict = {}
        expected = q.numeric_counts_many(table, bins, signed)
        ((key, entry),) = signed.items()
        assert (tmp_path / "cache" / "workbench" / "count-query.key").stat().st_size == 32
        assert q._verified(entry, key) == entry["sql"]
        hostile = "SELECT 1 AS j, 1 AS n, 1.0 AS s, 0 AS f"  # would give wrong counts if it ran
        for forged in ({key: hostile}, {key: {"sql": hostile, "signature": entry["signature"]}},
                       {key: {"sql": hostile, "signature": "0" * 64}}):  # fmt: skip
            q._TEMPLATES.clear()  # as in a new process
            got = q.numeric_counts_many(table, bins, forged)
            for f in numeric:
                np.testing.assert_array_equal(got[f]["bin_counts"], expected[f]["bin_counts"])
            assert forged[key]["sql"] != hostile and q._verified(forged[key], key) == forged[key]["sql"]


def test_a_profile_packed_for_the_cache_unpacks_to_the_same_numbers():
    rng = np.random.default_rng(4)
    entry = {"edges": [0.5, 1.5], "grid": {"lo": 0.0, "width": 0.1, "bins": 100}, "mean": 1.0, "std": 0.3,
             "bin_counts": [3.0, 4.0, 5.0], "grid_index": [0, 7, 101], "grid_counts": [1.0, 10.0, 2.0],
             "grid_sums": (rng.normal(size=3) * 1e6).tolist()}  # fmt: skip
    empty = {**entry, "grid_index": [], "grid_counts": [], "grid_sums": []}
    profile = {"numeric": {"x": entry, "empty": empty}, "categorical": {"c": {"a": 2}},
               "sizes": {"rows": 12, "n": {"x": 12}}, "count_sql": {"k": "SELECT 1"}}  # fmt: skip
    text = json.dumps(drift_cache._pack(profile))
    back = drift_cache._unpack(json.loads(text))
    for f in ("x", "empty"):
        for key in ("grid_index", "grid_counts", "grid_sums"):
            np.testing.assert_array_equal(back["numeric"][f][key], profile["numeric"][f][key])  # bit for bit
        assert back["numeric"][f]["edges"] == profile["numeric"][f]["edges"]
    assert back["numeric"]["x"]["grid_index"].dtype == np.int64
    assert {k: back[k] for k in ("categorical", "sizes", "count_sql")} == {
        k: profile[k] for k in ("categorical", "sizes", "count_sql")
    }


def test_a_count_query_kept_by_an_older_build_is_compiled_again(store, monkeypatch):
    """The template key carries COUNT_SQL_VERSION: after a change of the SQL, a cached profile's query is not run."""
    with store.ibis() as con:
        numeric, _ = store_features(con)
        table = con.table("predictions")
        bins = _reference_bins(table, numeric, 500)
        q._TEMPLATES.clear()
        templates: dict[str, str] = {}
        q.count_sql(table, bins, templates)
        (old_key,) = templates
        q._TEMPLATES.clear()
        monkeypatch.setattr(q, "COUNT_SQL_VERSION", q.COUNT_SQL_VERSION + 1)
        compiled = []
        union = q._counts_union
        monkeypatch.setattr(q, "_counts_union", lambda *a: compiled.append(1) or union(*a))
        q.count_sql(table, bins, templates)
        assert compiled == [1] and old_key not in templates


def test_the_references_label_counts_are_kept_with_its_profile_until_the_feedback_changes(
    tmp_path_factory, monkeypatch
):
    """A new window groups only its own labels and takes the reference's counts from the cached profile; new
    feedback makes them count again; every label drift equals an uncached run's."""
    import pandas as pd

    import workbench.drift.engine as engine
    from workbench.ingest.pipeline import ingest_frames

    target = tmp_path_factory.mktemp("drift-labels") / "workbench.duckdb"
    store = copy_demo(tmp_path_factory, Scenario(rows=20_000, days=30), target)[0]
    reference = Window(end=dt.datetime(2026, 1, 11, tzinfo=dt.UTC))
    within = []
    original = engine.labels_per_trace

    def counted(con, kinds, **options):  # notes whether the labels were grouped within one window
        within.append(options.get("within") is not None)
        return original(con, kinds, **options)

    monkeypatch.setattr(engine, "labels_per_trace", counted)

    def label_drift(start: int, cached: bool = True) -> dict:
        current = Window(start=dt.datetime(2026, 1, start, tzinfo=dt.UTC))
        result = compare(store, DriftRequest(reference, current, multivariate=False), use_cache=cached)
        return result.to_dict()["label_drift"]

    first = label_drift(24)
    assert within == [False] and first["n_reference"] > 500  # both windows' labels grouped, then kept
    second = label_drift(20)
    assert within == [False, True]  # only the new window's labels
    assert second == label_drift(20, cached=False) and second["n_reference"] == first["n_reference"]
    with store.ibis() as con:  # 40 more positive outcome labels on reference predictions
        p = con.table("predictions")
        traces = p.filter(p.ts < dt.datetime(2026, 1, 11, tzinfo=dt.UTC)).select("trace_id", "ts").limit(40).execute()
    extra = pd.DataFrame({"trace_id": traces["trace_id"], "ts": traces["ts"] + pd.Timedelta(hours=1),
                          "kind": "automated", "type": "outcome", "value": 1.0, "label": 1})  # fmt: skip
    extra["label"] = extra["label"].astype("Int8")
    ingest_frames(store, [(extra, "feedback")], source="late labels")
    within.clear()
    third = label_drift(20)
    assert within[0] is False  # the feedback changed: the reference's labels are counted again
    assert third == label_drift(20, cached=False) and third["n_reference"] >= first["n_reference"]
    assert third["reference"] != first["reference"]


@pytest.mark.parametrize("learn", [False, True])
def test_drift_over_time_without_the_grid_gives_the_same_psi_js_and_verdicts(store, learn):
    """The trigger's PSI-only run (no grid key in the count query) against the page's whole run: every PSI, JS
    distance, chi-square p, missing share, threshold, verdict and first crossing equal; KS and Wasserstein absent."""
    reference = Window(end=dt.datetime(2026, 1, 11, tzinfo=dt.UTC))
    whole = drift_over_time(store, OverTimeRequest(reference, "day", learn_thresholds=learn), SETTINGS)
    psi_only = drift_over_time(store, OverTimeRequest(reference, "day", learn_thresholds=learn, grid=False), SETTINGS)
    shared = ["chunk", "feature", "type", "rows", "n", "psi", "js_distance", "missing_share", "threshold", "drift"]
    pd.testing.assert_frame_equal(psi_only.values[shared], whole.values[shared])
    categorical = whole.values["type"] == "categorical"
    pd.testing.assert_series_equal(psi_only.values["p_value"][categorical], whole.values["p_value"][categorical])
    numeric = ~categorical
    assert numeric.sum() > 50 and whole.values.loc[numeric, "ks_statistic"].notna().all()
    assert psi_only.values.loc[numeric, ["ks_statistic", "wasserstein", "p_value"]].isna().all().all()
    assert psi_only.thresholds == whole.thresholds and psi_only.first_crossing == whole.first_crossing
    assert whole.values["drift"].any()  # the demo's drift shows, so the verdicts compared are not all "no"
