"""The consecutive-bucket logic of a rule, at its edges: gaps, partial and unsettled last buckets, hours."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.stream.rules import Rule
from workbench.stream.triggers import METRICS, judge

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2026-03-01", tz="UTC")


def series(values, n=None, start=T0, step=DAY):
    values = np.asarray(values, float)
    n = np.full(len(values), 1000.0) if n is None else np.asarray(n, float)
    return pd.DataFrame({"bucket": [start + i * step for i in range(len(values))], "value": values, "n": n})


def rule(metric="online_accuracy", op="<", threshold=0.7, persistence=3, window="day", min_n=100):
    return Rule("r", metric, op, threshold, persistence, window, min_n)


def run(values, n=None, as_of=None, settle=None, step=DAY, **kw):
    r = rule(window="hour" if step == pd.Timedelta(hours=1) else "day", **kw)
    s = series(values, n, step=step)
    as_of = as_of if as_of is not None else s["bucket"].iloc[-1] + step  # every bucket complete
    return judge(s, r, METRICS[r.metric], as_of, settle)


def test_fires_on_the_third_consecutive_breach_and_stays_fired_while_it_lasts():
    out = run([0.8, 0.6, 0.6, 0.6, 0.6, 0.8])
    assert out["breach"].tolist() == [False, True, True, True, True, False]
    assert out["fired"].tolist() == [False, False, False, True, True, False]
    assert out["streak"].tolist() == [0, 1, 2, 3, 4, 0]


def test_a_gap_day_without_data_breaks_the_streak():
    # day 3 had no labels at all (n = 0, value undefined): we cannot say it was below
    out = run([0.6, 0.6, np.nan, 0.6, 0.6, 0.6], n=[1000, 1000, 0, 1000, 1000, 1000])
    assert out["evaluable"].tolist() == [True, True, False, True, True, True]
    assert out["fired"].tolist() == [False, False, False, False, False, True]


def test_a_bucket_under_min_n_breaks_the_streak_in_the_middle():
    out = run([0.6, 0.6, 0.5, 0.6, 0.6], n=[1000, 1000, 99, 1000, 1000], min_n=100)
    assert not out["fired"].any()
    assert out.loc[2, "evaluable"] == False  # noqa: E712


def test_a_partial_last_day_is_not_judged_and_does_not_break_the_streak():
    # as_of is mid-way through the 5th day: that day is pending, the rule's state is its state on day 4
    as_of = T0 + 4 * DAY + pd.Timedelta(hours=10)
    out = run([0.8, 0.6, 0.6, 0.6, 0.9], as_of=as_of)
    assert out["complete"].tolist() == [True, True, True, True, False]
    assert out["pending"].tolist() == [False, False, False, False, True]
    assert out["fired"].tolist() == [False, False, False, True, False]


def test_the_last_bucket_is_complete_exactly_when_as_of_reaches_its_end():
    out = run([0.6, 0.6, 0.6], as_of=T0 + 3 * DAY)
    assert out["complete"].all() and out["fired"].iloc[-1]
    out = run([0.6, 0.6, 0.6], as_of=T0 + 3 * DAY - pd.Timedelta(microseconds=1))
    assert out["complete"].tolist() == [True, True, False]


def test_unsettled_days_wait_for_their_labels_instead_of_breaking_the_streak():
    # labels settle 36 h after a day ends: with as_of at the end of day 6, days 5 and 6 are pending
    as_of = T0 + 6 * DAY
    out = run([0.8, 0.6, 0.6, 0.6, 0.2, 0.2], as_of=as_of, settle=36.0)
    assert out["settled"].tolist() == [True, True, True, True, False, False]
    assert out["pending"].tolist() == [False, False, False, False, True, True]
    assert out["fired"].tolist() == [False, False, False, True, False, False]


def test_trailing_buckets_without_enough_labels_are_pending_not_breaks():
    out = run([0.6, 0.6, 0.6, 0.3], n=[1000, 1000, 1000, 12])
    assert out["pending"].tolist() == [False, False, False, True]
    assert out["fired"].iloc[2] and not out["evaluable"].iloc[3]


def test_hour_windows_use_the_same_logic_on_hours():
    start = pd.Timestamp("2026-03-01 09:00", tz="UTC")
    hour = pd.Timedelta(hours=1)
    values = [0.8, 0.6, 0.6, 0.6, 0.6]
    r = rule(window="hour", persistence=3)
    s = series(values, start=start, step=hour)
    out = judge(s, r, METRICS[r.metric], start + 4 * hour + pd.Timedelta(minutes=59), None)  # 13:59
    assert out["fired"].tolist() == [False, False, False, True, False]
    assert out["pending"].tolist() == [False, False, False, False, True]


def test_a_volume_of_zero_is_judged_so_an_outage_fires():
    r = rule(metric="prediction_volume", op="<", threshold=10, persistence=2, min_n=500)
    s = series([300, 0, 0, 250], n=[300, 0, 0, 250])
    out = judge(s, r, METRICS[r.metric], s["bucket"].iloc[-1] + DAY, None)
    assert out["evaluable"].all()  # min_n does not apply to a count
    assert out["fired"].tolist() == [False, False, True, False]


def test_a_running_metric_is_judged_in_the_current_bucket():
    r = rule(metric="days_since_retrain", op=">=", threshold=2, persistence=1)
    s = series([0.5, 1.5, 2.2], n=[np.inf] * 3)
    out = judge(s, r, METRICS[r.metric], T0 + 2 * DAY + pd.Timedelta(hours=5), None)
    assert out["evaluable"].all() and out["fired"].tolist() == [False, False, True]


def test_ops_compare_inclusively_or_strictly_as_written():
    at = [0.7, 0.7, 0.7]
    assert not run(at, op="<", threshold=0.7)["fired"].any()
    assert run(at, op="<=", threshold=0.7)["fired"].iloc[-1]
    assert run(at, op=">=", threshold=0.7)["fired"].iloc[-1]
    assert not run(at, op=">", threshold=0.7)["fired"].any()


def reference_fired(breach: list[bool], evaluable: list[bool], k: int) -> list[bool]:
    """Brute force: a bucket fires when it and the k−1 before it were all evaluable breaches and, for the
    trailing non-evaluable buckets, never."""
    last = max((i for i, e in enumerate(evaluable) if e), default=-1)
    return [
        i <= last and i + 1 >= k and all(evaluable[j] and breach[j] for j in range(i - k + 1, i + 1))
        for i in range(len(breach))
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 200)), min_size=1, max_size=40),
    st.integers(1, 5),
)
def test_fired_matches_a_brute_force_reading_of_the_rule(cells, k):
    values = [v for v, _ in cells]
    n = [c for _, c in cells]
    out = run(values, n=n, persistence=k, min_n=50, threshold=0.5)
    evaluable = [c >= 50 for c in n]
    breach = [v < 0.5 for v in values]
    assert out["fired"].tolist() == reference_fired(breach, evaluable, k)
