"""Acceptance on the demo scenario: the accuracy rule of rules.example.toml against the injected concept drift."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT
from workbench.stream.triggers import backtest_table, check, load_rules

START = pd.Timestamp("2026-01-01", tz="UTC")


@pytest.fixture(scope="module")
def accuracy_result(demo):
    store, truth = demo
    rules = load_rules(ROOT / "rules.example.toml")
    result = check(store, rules)
    return store, truth, result, next(r for r in result.rules if r.name == "accuracy_drop")


def independent_backtest(store, threshold=0.70, min_n=300, persistence=3, settled=0.5, horizon_days=30):
    """The rule computed straight in SQL and numpy, without the workbench's code: per prediction day, the share
    of automated outcome labels equal to the prediction; a day is judged when over, settled (ended at least
    the median label delay of predictions older than 30 days before the newest prediction) and ≥ min_n labels."""
    con = duckdb.connect(str(store.path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    as_of = pd.Timestamp(con.execute("SELECT max(ts) FROM predictions").fetchone()[0]).tz_convert("UTC")
    delays = con.execute(
        "SELECT epoch(f.ts) - epoch(p.ts) FROM feedback f JOIN predictions p USING (trace_id) "
        "WHERE f.label IS NOT NULL AND f.type = 'outcome' AND p.ts <= ?",
        [(as_of - pd.Timedelta(days=horizon_days)).to_pydatetime()],
    ).fetchnumpy()
    settle = pd.Timedelta(seconds=float(np.quantile(np.maximum(next(iter(delays.values())), 0), settled)))
    rows = con.execute(
        "SELECT date_trunc('day', p.ts) AS day, count(*) AS n, avg((f.label = p.prediction)::INT) AS accuracy "
        "FROM feedback f JOIN predictions p USING (trace_id) WHERE f.label IS NOT NULL AND f.type = 'outcome' "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    daily = pd.DataFrame(rows, columns=["day", "n", "accuracy"])
    con.close()
    daily["day"] = pd.to_datetime(daily["day"], utc=True)
    end = daily["day"] + pd.Timedelta(days=1)
    judged = (end <= as_of - settle) & (daily["n"] >= min_n)
    breach = judged & (daily["accuracy"] < threshold)
    fired, streak = [], 0
    for day, b in zip(daily["day"], breach, strict=True):
        streak = streak + 1 if b else 0
        if streak >= persistence:
            fired.append(day)
    return daily, judged, fired


def test_the_accuracy_rule_fires_within_3_days_after_the_concept_drift_and_not_before(accuracy_result):
    _, truth, _, accuracy = accuracy_result
    drift_day = START + pd.Timedelta(days=truth["concept_drift"]["day"])  # 2026-03-09, day 67
    fired = [pd.Timestamp(b, tz="UTC") for b in accuracy.fired_buckets]
    assert fired, "the accuracy rule never fired on the demo"
    assert min(fired) >= drift_day  # never before the drift
    assert min(fired) - drift_day <= pd.Timedelta(days=3)  # within 3 days after it
    assert min(fired) == drift_day + pd.Timedelta(days=2)  # = the third consecutive bad day: 67, 68, 69
    assert accuracy.fired and accuracy.since == str(min(fired).date())


def test_the_backtest_table_shows_exactly_the_days_an_independent_computation_finds(accuracy_result):
    store, _, result, accuracy = accuracy_result
    _, _, expected = independent_backtest(store)
    assert [str(d.date()) for d in expected] == accuracy.fired_buckets
    rows = [row for row in backtest_table(result) if row["rule"] == "accuracy_drop"]
    assert rows == [
        {
            "rule": "accuracy_drop",
            "metric": "online_accuracy",
            "first": str(expected[0].date()),
            "last": str(expected[-1].date()),
            "buckets": len(expected),
            "fires now": True,
        }
    ]
    # one unbroken episode, from the third day after the drift to the newest day whose labels have settled
    assert (expected[-1] - expected[0]).days + 1 == len(expected)


def test_online_accuracy_on_settled_days_matches_the_injected_truth(accuracy_result):
    _, truth, _, accuracy = accuracy_result
    drift_day = START + pd.Timedelta(days=truth["concept_drift"]["day"])
    frame = accuracy.frame[accuracy.frame["evaluable"]]
    before = frame.loc[frame["bucket"] < drift_day]
    after = frame.loc[frame["bucket"] >= drift_day]
    # label-weighted, like the truth (which counts every prediction of the period)
    weighted = lambda part: float((part["value"] * part["n"]).sum() / part["n"].sum())  # noqa: E731
    assert weighted(before) == pytest.approx(truth["concept_drift"]["accuracy_before"], abs=0.01)
    assert weighted(after) == pytest.approx(truth["concept_drift"]["accuracy_after"], abs=0.015)
    assert before["value"].min() > 0.75 and after["value"].max() < 0.62  # the threshold 0.70 has room on both sides


def test_the_recent_unsettled_days_are_pending_not_judged(accuracy_result):
    store, _, _, accuracy = accuracy_result
    daily, judged, _ = independent_backtest(store)
    assert accuracy.pending_buckets == int((~judged).iloc[::-1].cummin().sum())  # the trailing unjudged days
    assert accuracy.bucket == str(daily.loc[judged, "day"].iloc[-1].date())
    assert 60 < accuracy.settle_hours < 84  # the median outcome label delay is ≈ 3 days
