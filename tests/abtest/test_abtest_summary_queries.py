"""The one-query A/B aggregates give what the one-query-per-aggregate functions give, on a small tricky store."""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tests.helpers.abtest_data import insert_tricky_predictions
from workbench.abtest.queries import (
    arm_units,
    cap_value,
    capped_stats,
    crossover_units,
    daily_event_stats,
    event_observations,
    observations,
    period,
    pre_period_observations,
    pre_period_predictions,
    rank_sums,
    segment_units,
    temp_table,
    unit_stats,
)
from workbench.abtest.summary_queries import (
    capped_from_counts,
    event_summary,
    rank_sums_from_counts,
    read_event_summary,
    read_unit_summary,
    unit_summary,
)
from workbench.core.window import Window
from workbench.sources.chunks import DAY_US, HOUR_US, utc_bucket
from workbench.sources.experiment import experiment_predictions, metric, units_by_arm
from workbench.sources.store import Store
from workbench.stats.abtest import Moments

SEGMENTS = ("region", "device")
METRICS = [metric("thumbs_up_rate"), metric("dwell_time"), metric("mean_rating")]


@pytest.fixture(scope="module")
def tricky_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """3 arms, 400 units of which 5 crossed arms, a NULL segment, a unit-less prediction, tied dwell values."""
    store = Store(tmp_path_factory.mktemp("abq") / "tricky.duckdb")
    with store.connect(read_only=False) as con:
        insert_tricky_predictions(con)
        con.execute("""
            INSERT INTO feedback
            SELECT 'tr-' || (hash(j) % 4000), TIMESTAMPTZ '2026-03-02 00:00:00+00', 'explicit',
                   ['thumb', 'dwell', 'rating', 'click'][1 + (j % 4)],
                   CASE WHEN j % 4 = 0 THEN (hash(j + 1) % 2)::DOUBLE WHEN j % 4 = 1 THEN (hash(j + 2) % 40) / 2.0
                        WHEN j % 4 = 2 THEN 1 + hash(j + 3) % 5 ELSE 1 END, NULL, NULL
            FROM range(9000) t(j)""")  # fmt: skip
    return store


def _close(a: Moments, b: Moments) -> None:
    assert a.n == b.n
    assert np.allclose(a.mean, b.mean, rtol=1e-12, atol=0) and np.allclose(a.comoment, b.comoment, rtol=1e-10, atol=0)


def test_unit_summary_equals_the_per_aggregate_queries(tricky_store: Store) -> None:
    with tricky_store.ibis() as con:
        exp, _source = experiment_predictions(con, None, "auto", SEGMENTS)
        new = read_unit_summary(unit_summary(exp, len(SEGMENTS)).execute(), len(SEGMENTS), max_values=50)
        capped = read_unit_summary(unit_summary(exp, len(SEGMENTS)).execute(), len(SEGMENTS), max_values=2)
        with temp_table(con, units_by_arm(exp, len(SEGMENTS)), "abtest_units") as units:
            counts, (first, last), crossover = arm_units(units), period(units), crossover_units(units)
            segments = [segment_units(units, i, 50) for i in range(len(SEGMENTS))]
            assert capped.segments == [segment_units(units, i, 2) for i in range(len(SEGMENTS))]
    assert new.counts == counts and list(new.counts) == ["alpha", "beta", "gamma"]
    assert (new.first, new.last, new.crossover) == (first, last, crossover)
    assert crossover == 5 and isinstance(first, dt.datetime)
    assert new.segments == segments and "(missing)" in segments[0]
    assert capped.segments == [{}, {}]  # 3 values each (region with '(missing)'): above 2, no per-segment check


def test_units_by_arm_equals_ibis_argmin(tricky_store: Store) -> None:
    """The min of (ts, trace_id, segments…) gives, per (unit, arm), the segments Ibis's argmin (FIRST … ORDER BY
    ts) gives (no two predictions of a unit share a ts in this store)."""
    with tricky_store.ibis() as con:
        exp, _source = experiment_predictions(con, None, "auto", SEGMENTS)
        plain = {f"seg_{i}": exp[f"seg_{i}"].argmin(exp.ts) for i in range(len(SEGMENTS))}
        old = exp.group_by(["unit", "arm"]).aggregate(first=exp.ts.min(), last=exp.ts.max(), **plain).execute()
        new = units_by_arm(exp, len(SEGMENTS)).execute()
    key = ["unit", "arm"]
    old, new = old.sort_values(key).reset_index(drop=True), new.sort_values(key).reset_index(drop=True)
    assert len(new) == 406 and list(new.columns) == list(old.columns)  # 400 units + 5 crossed + 1 unit-less
    assert new.equals(old)
    assert (new["seg_0"] == "(missing)").any()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-3 * 10**15, 4 * 10**15), min_size=1, max_size=30), st.sampled_from(["h", "D", "W"]))
def test_utc_bucket_equals_date_trunc_of_the_naive_timestamp(micros: list[int], unit: str) -> None:
    """The integer floor of an hour, day or ISO week (from Monday) is DuckDB's date_trunc(unit, ts::TIMESTAMP),
    before and after 1970, on and next to the boundaries."""
    import duckdb
    import ibis

    week = 7 * DAY_US
    monday = 4 * DAY_US  # 1970-01-05
    edges = [0, -1, HOUR_US, HOUR_US - 1, DAY_US, DAY_US - 1, -DAY_US, -DAY_US - 1, monday, monday - 1,
             monday + week, monday - week, monday - week - 1]  # fmt: skip
    micros = [*micros, *edges]
    raw = duckdb.connect()
    raw.execute("SET TimeZone = 'UTC'")
    raw.execute(
        "CREATE TABLE t AS SELECT TIMESTAMPTZ 'epoch' + to_microseconds(us) AS ts FROM unnest(?) u(us)", [micros]
    )
    t = ibis.duckdb.from_connection(raw).table("t")
    frame = t.select(new=utc_bucket(t.ts, unit), old=t.ts.cast("timestamp").truncate(unit)).execute()
    assert frame["new"].dtype == frame["old"].dtype
    assert (frame["new"] == frame["old"]).all()
    if unit == "W":
        assert (frame["new"].dt.day_of_week == 0).all()


def test_event_summary_equals_the_per_aggregate_queries(tricky_store: Store) -> None:
    with tricky_store.ibis() as con:
        exp, _source = experiment_predictions(con, None, "auto", ())
        for nonzero in (False, True):
            query = event_summary(event_observations(con, exp, METRICS), METRICS, 0.9, nonzero)
            new = read_event_summary(query.execute(), METRICS)
            with temp_table(con, event_observations(con, exp, METRICS), "abtest_events") as events:
                for m in METRICS:
                    obs = observations(con, exp, m, events)
                    got = new[m.name]
                    units = unit_stats(obs)
                    assert set(got.units) == set(units) == {"alpha", "beta", "gamma"}
                    for arm in units:
                        _close(got.units[arm], units[arm])
                    daily = daily_event_stats(obs, m.kind)
                    assert {a: set(d) for a, d in got.daily.items()} == {a: set(d) for a, d in daily.items()}
                    for arm, per_day in daily.items():
                        for day, s in per_day.items():
                            if m.kind == "proportion":
                                assert got.daily[arm][day] == s
                            else:
                                _close(got.daily[arm][day], s)
                    if m.kind != "mean":
                        assert got.capped is None and got.cap is None and got.values == {}
                        continue
                    cap = cap_value(obs, 0.9, nonzero)
                    assert got.cap == cap and cap is not None
                    for arm, s in capped_stats(obs, cap).items():
                        _close(got.capped[arm], s)
                    for variant in ("beta", "gamma"):
                        assert rank_sums_from_counts(got.values, "alpha", variant) == rank_sums(obs, "alpha", variant)


def test_event_summary_with_cuped_equals_unit_stats_with_the_pre_period(tricky_store: Store) -> None:
    """With the pre-period, each arm's unit Moments of (y, m, z) are those of unit_stats(obs, pre)."""
    start = dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
    with tricky_store.ibis() as con:
        exp, _source = experiment_predictions(con, Window(start=start), "auto", ())
        pre = event_observations(con, pre_period_predictions(con, start, 3), METRICS)
        query = event_summary(event_observations(con, exp, METRICS), METRICS, 0.9, False, pre)
        new = read_event_summary(query.execute(), METRICS, cuped=True)
        plain = read_event_summary(event_summary(event_observations(con, exp, METRICS), METRICS, 0.9, False)
                                   .execute(), METRICS)  # fmt: skip
        for m in METRICS:
            units = unit_stats(observations(con, exp, m), pre_period_observations(con, m, start, 3))
            got = new[m.name]
            assert got.cuped and not plain[m.name].cuped and set(got.units) == set(units) == {"alpha", "beta", "gamma"}
            for arm in units:
                assert got.units[arm].k == 3 and got.units[arm].comoment[2][2] > 0  # units with a pre-period
                _close(got.units[arm], units[arm])
                _close(plain[m.name].units[arm], Moments(units[arm].n, units[arm].mean[:2],
                                                         tuple(r[:2] for r in units[arm].comoment[:2])))  # fmt: skip
            assert got.daily == plain[m.name].daily and got.values == plain[m.name].values


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=40), st.lists(st.integers(0, 6), min_size=1, max_size=40))
def test_rank_sums_from_counts_equal_scipy_ranks(control: list[int], variant: list[int]) -> None:
    """The variant's rank sum is Σ of scipy's average ranks over the pooled sample; ties Σ(t³ − t)."""
    values: dict[str, dict[float, int]] = {"c": {}, "v": {}}
    for arm, data in (("c", control), ("v", variant)):
        for x in data:
            values[arm][float(x)] = values[arm].get(float(x), 0) + 1
    n_c, n_v, rank_sum, ties = rank_sums_from_counts(values, "c", "v")
    ranks = stats.rankdata(np.r_[control, variant])
    _unique, t = np.unique(np.r_[control, variant], return_counts=True)
    assert (n_c, n_v) == (len(control), len(variant))
    assert math.isclose(rank_sum, ranks[len(control) :].sum(), rel_tol=0, abs_tol=1e-9)
    assert ties == float((t**3 - t).sum())


def test_rank_sums_from_counts_of_an_empty_pair_are_zero() -> None:
    assert rank_sums_from_counts({}, "a", "b") == (0, 0, 0.0, 0.0)


def test_the_store_analysis_joins_feedback_once_and_creates_no_table(tricky_store: Store, monkeypatch) -> None:
    """Default metrics: no temporary table; one query reads the feedback (the events), one groups the units."""
    from ibis.backends.duckdb import Backend

    from workbench.abtest.analyse import analyse_store

    executed: list[str] = []
    created: list[str] = []
    execute, create_table = Backend.execute, Backend.create_table

    def spy_execute(self, expr, *args, **kwargs):  # type: ignore[no-untyped-def]
        executed.append(str(self.compile(expr)))
        return execute(self, expr, *args, **kwargs)

    def spy_create(self, name, *args, **kwargs):  # type: ignore[no-untyped-def]
        created.append(name)
        return create_table(self, name, *args, **kwargs)

    monkeypatch.setattr(Backend, "execute", spy_execute)
    monkeypatch.setattr(Backend, "create_table", spy_create)
    result = analyse_store(tricky_store)
    assert created == []
    assert sum('"feedback"' in sql for sql in executed) == 1
    assert sum(bool(re.search(r'MIN\("t\d+"\."ts"\) AS "first"', sql)) for sql in executed) == 1  # (unit, arm)
    assert result.srm.crossover_units == 5 and set(result.srm.counts) == {"alpha", "beta", "gamma"}


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]), st.lists(st.integers(0, 80), min_size=1, max_size=60), min_size=1
    ),
    st.integers(0, 80),
)
def test_capped_from_counts_equals_the_capped_raw_values(arms: dict[str, list[int]], cap_tenths: int) -> None:
    """Moments of min(value, cap) from the distinct values' counts = two-pass numpy moments of the raw values."""
    raw = {arm: [x / 10 for x in data] for arm, data in arms.items()}
    values: dict[str, dict[float, int]] = {}
    for arm, data in raw.items():
        for x in data:
            values.setdefault(arm, {})[x] = values.get(arm, {}).get(x, 0) + 1
    cap = cap_tenths / 10
    got = capped_from_counts(values, cap)
    assert set(got) == set(raw)
    for arm, data in raw.items():
        want = Moments.from_values(np.minimum(data, cap))
        assert got[arm].n == want.n
        assert math.isclose(got[arm].mean[0], want.mean[0], rel_tol=1e-13, abs_tol=1e-13)
        assert math.isclose(got[arm].comoment[0][0], want.comoment[0][0], rel_tol=1e-12, abs_tol=1e-12)
