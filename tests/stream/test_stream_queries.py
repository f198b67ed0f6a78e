"""Stream aggregates against hand counts, statsmodels and an independent reading of the store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from tests.helpers.stream_data import ROLES, START, build
from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.demo.scenario import Scenario, build_demo
from workbench.ingest.pipeline import ingest_frames
from workbench.sources.store_queries import store_summary
from workbench.stream.quality import label_delays_from, label_delays_many, signal_quality_from
from workbench.stream.queries import SERIES_COUNTS, feedback_arrivals, series_from, stream_series
from workbench.stream.snapshot import StreamSettings, add_rates, stream_snapshot

H = pd.Timedelta(hours=1)


def prediction(trace, ts, prediction=1, version="v1", region="north"):
    return {"trace_id": trace, "ts": ts, "model_version": version, "prediction": prediction, "region": region}


def fb(trace, ts, kind, type_, value, label=None):
    return {"trace_id": trace, "ts": ts, "kind": kind, "type": type_, "value": value, "label": label}


@pytest.fixture()
def small(tmp_path):
    """Two days, four predictions; every kind of feedback once or twice."""
    return _small(tmp_path / "s.duckdb")


@pytest.fixture(scope="module")
def small_shared(tmp_path_factory):
    """The same store, built once for the module's property test (never written to)."""
    return _small(tmp_path_factory.mktemp("stream") / "s.duckdb")


def _small(path):
    d0, d1 = START + 9 * H, START + pd.Timedelta(days=1) + 9 * H
    predictions = [
        prediction("a", d0, 1, region="north"),
        prediction("b", d0 + H, 0, region="south"),
        prediction("c", d1, 1, version="v2", region="south"),
        prediction("d", d1 + H, 1, version="v2", region="north"),
    ]
    feedback = [
        fb("a", d0 + H, "explicit", "thumb", 1),
        fb("a", d0 + 30 * H, "automated", "outcome", 1, 1),  # correct, 30 h late
        fb("b", d0 + 2 * H, "implicit", "click", 0),
        fb("b", d0 + 50 * H, "automated", "outcome", 1, 1),  # wrong (predicted 0)
        fb("b", d0 + 3 * H, "explicit", "correction", 1, 1),  # wrong too
        fb("c", d1 + H, "explicit", "thumb", 0),
        fb("c", d1 + 2 * H, "implicit", "click", 1),
        fb("zz", d1, "implicit", "click", 1),  # orphan
    ]
    return build(path, predictions, feedback)


def test_series_counts_every_column_by_prediction_day(small):
    frame = stream_series(small).set_index("bucket")
    day0, day1 = frame.loc[START], frame.loc[START + pd.Timedelta(days=1)]
    expected0 = dict(predictions=2, with_feedback=2, with_label=2, feedback_explicit=2, feedback_implicit=1,
                     feedback_automated=2, labels=3, correct=1, thumbs=1, thumbs_up=1, clicks=1, clicked=0)  # fmt: skip
    expected1 = dict(predictions=2, with_feedback=1, with_label=0, feedback_explicit=1, feedback_implicit=1,
                     feedback_automated=0, labels=0, correct=0, thumbs=1, thumbs_up=0, clicks=1, clicked=1)  # fmt: skip
    assert {k: int(day0[k]) for k in expected0} == expected0
    assert {k: int(day1[k]) for k in expected1} == expected1


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.sampled_from(SERIES_COUNTS), min_size=1, max_size=4, unique=True),
    label_types=st.sampled_from([None, ("outcome",), ("correction",), ("outcome", "correction")]),
    segment=st.sampled_from([None, "region", "model_version"]),
    granularity=st.sampled_from(["hour", "day", "week"]),
)
def test_a_rules_few_counts_equal_the_whole_series(small_shared, counts, label_types, segment, granularity):
    """A trigger rule's counts (summed over feedback rows, no per-trace grouping when it can) are the page's."""
    whole = stream_series(small_shared, None, granularity, segment, label_types)
    with small_shared.ibis() as con:
        few = series_from(con, None, granularity, segment, label_types, tuple(counts))
    assert list(few.columns) == ["bucket", "segment", *dict.fromkeys(["predictions", *counts])]
    pd.testing.assert_frame_equal(few, whole[list(few.columns)])


def test_a_rules_counts_on_the_demo_equal_the_whole_series(demo_small):
    """The same on the demo's thousands of rows, for the counts the example rules read."""
    store, _ = demo_small
    with store.ibis() as con:
        for label_types in (None, ("outcome",)):
            whole = series_from(con, None, "day", None, label_types)
            for counts in (("labels", "correct"), ("thumbs", "thumbs_up"), ("clicks", "clicked"), ("predictions",)):
                few = series_from(con, None, "day", None, label_types, counts)
                assert few["predictions"].sum() == whole["predictions"].sum() > 1000
                pd.testing.assert_frame_equal(few, whole[list(few.columns)])
    with store.ibis() as con, pytest.raises(ValueError, match="unknown stream counts: nope"):
        series_from(con, counts=("nope",))


@pytest.mark.parametrize("label_types", [None, ("outcome",), ("correction",)])
def test_arrivals_of_labels_only_count_the_same_labels(demo_small, label_types):
    """The triggers' arrivals (label rows only) give each bucket the labels of the whole arrivals."""
    store, _ = demo_small
    with store.ibis() as con:
        whole = feedback_arrivals(con, None, "day", label_types)
        labels = feedback_arrivals(con, None, "day", label_types, labels_only=True)
    per_bucket = whole.groupby("bucket")["labels"].sum()
    per_bucket = per_bucket[per_bucket > 0]
    assert per_bucket.sum() > 100
    pd.testing.assert_series_equal(labels.groupby("bucket")["labels"].sum(), per_bucket)
    assert (labels["rows"] == labels["labels"]).all()


def test_label_types_choose_which_feedback_counts_as_labels(small):
    frame = stream_series(small, label_types=["outcome"])
    day0 = frame.iloc[0]
    assert (day0["labels"], day0["correct"], day0["with_label"]) == (2, 1, 2)
    frame = stream_series(small, label_types=["correction"])
    assert (frame.iloc[0]["labels"], frame.iloc[0]["correct"], frame.iloc[0]["with_label"]) == (1, 0, 1)


def test_segments_split_the_counts_and_sum_back(small):
    frame = stream_series(small, segment="region")
    assert set(frame["segment"]) == {"north", "south"}
    assert frame["predictions"].sum() == 4
    north0 = frame[(frame["segment"] == "north") & (frame["bucket"] == START)].iloc[0]
    assert (north0["predictions"], north0["labels"], north0["correct"]) == (1, 1, 1)
    by_version = stream_series(small, segment="model_version")
    assert by_version.groupby("segment")["predictions"].sum().to_dict() == {"v1": 2, "v2": 2}


def test_the_window_filters_versions_and_time(small):
    frame = stream_series(small, Window(model_versions=("v2",)))
    assert frame["predictions"].sum() == 2 and frame["bucket"].tolist() == [START + pd.Timedelta(days=1)]
    frame = stream_series(small, Window(end=(START + pd.Timedelta(days=1)).to_pydatetime()))
    assert frame["predictions"].sum() == 2


def test_hours_and_weeks_bucket_on_utc_boundaries(small):
    hours = stream_series(small, granularity="hour")
    assert hours["bucket"].tolist() == [START + 9 * H, START + 10 * H, START + 33 * H, START + 34 * H]
    weeks = stream_series(small, granularity="week")
    assert weeks["bucket"].tolist() == [pd.Timestamp("2025-12-29", tz="UTC")]  # ISO week: Monday


def test_bad_split_and_granularity_are_one_line_errors(small):
    with pytest.raises(InputError, match="cannot split the stream by 'score'"):
        stream_series(small, segment="score")
    with pytest.raises(InputError, match="granularity must be one of hour, day, week"):
        stream_series(small, granularity="month")


def test_rates_carry_wilson_bands_equal_to_statsmodels():
    frame = pd.DataFrame(
        {c: [0] * 3 for c in ("predictions", "with_feedback", "with_label", "labels", "correct", "clicks", "clicked")}
        | {"thumbs": [10, 250, 0], "thumbs_up": [7, 140, 0]}
    )
    out = add_rates(frame, 0.95)
    low, high = proportion_confint([7, 140], [10, 250], alpha=0.05, method="wilson")
    np.testing.assert_allclose(out["thumbs_up_rate_lower"][:2], low, rtol=1e-12)
    np.testing.assert_allclose(out["thumbs_up_rate_upper"][:2], high, rtol=1e-12)
    assert out["thumbs_up_rate"].tolist()[:2] == [0.7, 0.56] and np.isnan(out["thumbs_up_rate"][2])


def delay_store(tmp_path, delays_hours, days_ago):
    """One prediction per delay, ``days_ago`` days before the newest (clock) prediction, each labelled later."""
    clock = START + pd.Timedelta(days=60)
    predictions, feedback = [prediction("clock", clock, 0)], []
    for i, (delay, age) in enumerate(zip(delays_hours, days_ago, strict=True)):
        ts = clock - pd.Timedelta(days=age)
        predictions.append(prediction(f"p{i}", ts))
        feedback.append(fb(f"p{i}", ts + pd.Timedelta(hours=delay), "automated", "outcome", 1, 1))
    return build(tmp_path / "d.duckdb", predictions, feedback), clock


def test_label_delay_quantiles_are_exact_on_the_mature_cohort(tmp_path):
    rng = np.random.default_rng(1)
    old = rng.gamma(2, 20, 150)  # hours, on predictions 40+ days old
    young = rng.gamma(2, 5, 50)  # faster labels on young predictions: left out of the cohort
    store, clock = delay_store(tmp_path, [*old, *young], [40 + i % 10 for i in range(150)] + [5] * 50)
    with store.ibis() as con:
        delays = label_delays_from(con, None, clock, shares=(0.5, 0.95), horizon_days=30, min_labels=100)
    assert not delays.censored and delays.labels == 150
    assert delays.quantile_hours(0.5) == pytest.approx(np.quantile(old, 0.5), rel=1e-6)
    assert delays.quantile_hours(0.95) == pytest.approx(np.quantile(old, 0.95), rel=1e-6)
    assert delays.arrived_within.set_index("days").loc[1, "share"] == pytest.approx(np.mean(old <= 24))
    assert delays.histogram["labels"].sum() == 150


def test_label_delay_falls_back_to_every_prediction_and_says_it_is_censored(tmp_path):
    store, clock = delay_store(tmp_path, [1.0, 2.0, 30.0, -3.0], [2, 2, 2, 2])
    with store.ibis() as con:
        delays = label_delays_from(con, None, clock, shares=(0.5,), horizon_days=30, min_labels=100)
    assert delays.censored and delays.labels == 4 and delays.negative == 1
    assert delays.quantile_hours(0.5) == pytest.approx(np.quantile([1.0, 2.0, 30.0, 0.0], 0.5))  # skew counts as 0


def test_several_label_types_delays_from_one_join_equal_each_alone_and_by_hand(tmp_path):
    """A check's rules settle on different label types: one join gives each set its own cohort and quantiles, the
    outcome labels' mature cohort and the corrections' fallback to every prediction (too few old ones)."""
    rng = np.random.default_rng(4)
    clock = START + pd.Timedelta(days=80)
    outcome, correction = rng.gamma(2, 20, 150), rng.gamma(2, 3, 60)
    outcome[:5] = -2.0  # clock skew: labels before their prediction count as 0 and are counted as negative
    predictions, feedback = [prediction("clock", clock, 0)], []
    for i, delay in enumerate(outcome):  # predictions 40+ days old: the mature cohort
        ts = clock - pd.Timedelta(days=40 + i % 10)
        predictions.append(prediction(f"o{i}", ts))
        feedback.append(fb(f"o{i}", ts + pd.Timedelta(hours=delay), "automated", "outcome", 1, 1))
    for i, delay in enumerate(correction):  # young predictions: corrections have no mature cohort
        ts = clock - pd.Timedelta(days=3)
        predictions.append(prediction(f"c{i}", ts))
        feedback.append(fb(f"c{i}", ts + pd.Timedelta(hours=delay), "explicit", "correction", 1, 0))
    store = build(tmp_path / "two.duckdb", predictions, feedback)
    sets = [("outcome",), ("correction",), None]
    with store.ibis() as con:
        together = label_delays_many(con, None, clock, sets, shares=(0.5, 0.9), min_labels=100)
        # each set alone through the page's path (one label type, with the histogram: no per-set filter)
        alone = [label_delays_from(con, None, clock, s, shares=(0.5, 0.9), min_labels=100) for s in sets]
    for got, want in zip(together, alone, strict=True):
        assert (got.labels, got.censored, got.negative, got.cohort_end) == (
            want.labels, want.censored, want.negative, want.cohort_end)  # fmt: skip
        assert got.quantiles == pytest.approx(want.quantiles, rel=1e-12)
    assert (together[0].labels, together[0].censored, together[0].negative) == (150, False, 5)
    assert (together[1].labels, together[1].censored, together[1].negative) == (60, True, 0)
    assert (together[2].labels, together[2].censored) == (150, False)  # every label: the 150 old ones mature
    by_hand = np.maximum(outcome, 0.0)
    for share in (0.5, 0.9):
        assert together[0].quantile_hours(share) == pytest.approx(np.quantile(by_hand, share), rel=1e-6)
        assert together[1].quantile_hours(share) == pytest.approx(np.quantile(correction, share), rel=1e-6)
        assert together[2].quantile_hours(share) == pytest.approx(np.quantile(by_hand, share), rel=1e-6)


def test_recent_buckets_are_shaded_until_95_percent_of_labels_arrive(tmp_path):
    # labels arrive 10 h to 48 h after their prediction: the 95% delay is ≈ 46 h
    delays = np.linspace(10, 48, 120)
    store, clock = delay_store(tmp_path, delays, [31 + i % 5 for i in range(120)])
    settings = StreamSettings(min_delay_labels=100)
    snap = stream_snapshot(store, granularity="day", settings=settings)
    q95 = float(np.quantile(delays, 0.95))
    assert snap.labels_complete_hours == pytest.approx(q95)
    cutoff = clock - pd.Timedelta(hours=q95)
    series = snap.series.set_index("bucket")
    for bucket, row in series.iterrows():
        assert row["labels_complete"] == (bucket + pd.Timedelta(days=1) <= cutoff), bucket
    assert snap.labels_incomplete_from == series.index[~series["labels_complete"]].min()
    assert snap.labels_incomplete_from == (cutoff - pd.Timedelta(days=1)).ceil("D")
    assert "Labels are still arriving from" in snap.verdict()


@pytest.mark.parametrize("copies", [True, False])
def test_signal_quality_counts_conflicts_repeats_orphans_quarantine_and_duplicates(small, copies, monkeypatch):
    from workbench.sources import trace_feedback

    d0 = START + 9 * H
    extra = pd.DataFrame(
        [
            fb("a", d0 + 40 * H, "explicit", "correction", 0, 0),  # a: outcome 1 vs correction 0 → conflict
            fb("c", d0 + 30 * H, "explicit", "thumb", 1),  # c: a second thumb → repeated
            fb("a", d0 + H, "explicit", "thumb", 1),  # identical to an existing row → duplicate at ingest
            fb("zz2", d0, "implicit", "click", 1),  # another orphan
            fb("b", "not a time", "explicit", "thumb", 1),  # quarantined
        ]
    )
    extra["label"] = extra["label"].astype("Int8")
    ingest_frames(small, [(extra, "feedback")], ROLES, source="more")
    with small.ibis() as con:
        assert trace_feedback.copies_current(con)  # the store's copies are read, unless patched here
    if not copies:  # the same numbers when the feedback is joined with the predictions instead
        monkeypatch.setattr(trace_feedback, "copies_current", lambda backend: False)
    with small.ibis() as con:
        quality = signal_quality_from(con)
        only_v1 = signal_quality_from(con, Window(model_versions=("v1",)))
    assert quality.totals == {
        "quarantined": 1,
        "duplicates_at_ingest": 1,
        "conflicting_label_traces": 1,
        "repeated_feedback_traces": 1,
        "orphan_feedback": 2,
    }
    assert quality.quarantine["reason"].tolist() == ["ts is not a timestamp"]
    assert only_v1.totals["repeated_feedback_traces"] == 0 and only_v1.totals["conflicting_label_traces"] == 1
    assert quality.conflicts.set_index("bucket").loc[START, "conflicting"] == 1


@pytest.fixture(scope="module")
def demo_small(tmp_path_factory):
    from workbench.sources.store import Store

    store = Store(tmp_path_factory.mktemp("stream") / "demo.duckdb")
    truth = build_demo(store, Scenario(rows=20_000, days=30))
    return store, truth


def test_the_snapshot_agrees_with_the_store_summary_and_the_truth(demo_small):
    store, truth = demo_small
    snap = stream_snapshot(store, segment="model_version")
    summary = store_summary(store)
    assert snap.totals["predictions"] == summary.predictions == truth["predictions"]
    assert snap.totals["coverage_any"] == pytest.approx(summary.coverage_any, abs=1e-12)
    assert snap.totals["coverage_labelled"] == pytest.approx(summary.coverage_labelled, abs=1e-12)
    assert snap.arrivals["rows"].sum() == summary.feedback - summary.orphan_feedback
    assert snap.quality.totals["orphan_feedback"] == summary.orphan_feedback == truth["orphan_feedback"]
    first = snap.versions.set_index("model_version")["first_ts"]
    assert first["v2"].floor("D") == pd.Timestamp(truth["start"], tz="UTC") + pd.Timedelta(
        days=truth["ab_test"]["start_day"]
    )
    overall = snap.overall()
    assert overall["predictions"].sum() == truth["predictions"] and len(overall) == 30


def test_the_snapshot_respects_the_window_everywhere(demo_small):
    store, _ = demo_small
    window = Window(model_versions=("v2",))
    snap = stream_snapshot(store, window)
    assert snap.totals["predictions"] == store_summary(store, window).predictions
    assert snap.versions["model_version"].tolist() == ["v2"]
    assert snap.series["bucket"].min() >= snap.versions["first_ts"].iloc[0].floor("D")
    with store.connect() as con:
        v2_feedback = con.execute(
            "SELECT count(*) FROM feedback f JOIN predictions p USING (trace_id) WHERE p.model_version = 'v2'"
        ).fetchone()[0]
    assert snap.arrivals["rows"].sum() == v2_feedback
    assert snap.to_dict()["totals"]["predictions"] == snap.totals["predictions"]


WINDOWS = [
    None,
    Window(model_versions=("v2",)),
    Window(start=START + pd.Timedelta(days=10), end=START + pd.Timedelta(days=20)),
    Window(start=START + pd.Timedelta(days=5), model_versions=("v1",)),
]


@pytest.mark.parametrize("window", WINDOWS)
def test_the_feedbacks_copies_of_its_prediction_give_the_joins_numbers(demo_small, window, monkeypatch):
    """Series, arrivals, labels before a moment and label delays read the prediction's ts and prediction kept on
    each feedback row, or join the predictions: the same numbers for every window (a segment or a version joins)."""
    from workbench.sources import trace_feedback
    from workbench.stream.queries import labels_arrived_before

    store, _ = demo_small

    def numbers():
        with store.ibis() as con:
            kept = trace_feedback.on_predictions(con, con.table("feedback"), window, ("ts",))
            joined = "JOIN" in str(con.compile(kept)).upper()
            moments = [START + pd.Timedelta(days=d) for d in (3, 12, 25)]
            return joined, {
                "labels": series_from(con, window, "day", None, ("outcome",), ("labels", "correct")),
                "thumbs": series_from(con, window, "day", None, None, ("thumbs", "thumbs_up", "clicks", "clicked")),
                "segment": series_from(con, window, "week", "region", None, ("labels", "correct", "thumbs")),
                "whole": series_from(con, window, "day", None, ("outcome",)),  # per trace on the join path
                "whole_all": series_from(con, window, "hour", None, None),
                "whole_segment": series_from(con, window, "week", "model_version", ("correction",)),
                "per_prediction": series_from(con, window, "day", None, None, ("with_label", "with_feedback")),
                "per_prediction_types": series_from(con, window, "day", "region", ("outcome",),
                                                    ("with_feedback", "clicks", "with_label")),
                "arrivals": feedback_arrivals(con, window, "day", None),
                "conflicts": (quality := signal_quality_from(con, window, "day")).conflicts,
                "orphans": quality.orphans, "quality_totals": quality.totals,
                "label_arrivals": feedback_arrivals(con, window, "hour", ("outcome",), labels_only=True),
                "before": labels_arrived_before(con, moments, window, ("outcome",)),
                "delays": [d.to_dict() for d in label_delays_many(
                    con, window, START + pd.Timedelta(days=29), [None, ("outcome",), ("correction",)], min_labels=50)],
            }  # fmt: skip

    joined, kept = numbers()
    monkeypatch.setattr(trace_feedback, "copies_current", lambda backend: False)
    joined_after, joins = numbers()
    versions = window is not None and bool(window.model_versions)
    assert joined == versions and joined_after  # the first read the copies (a version filter joins), the second joined
    assert kept["labels"]["labels"].sum() > 100 and kept["thumbs"]["thumbs"].sum() > 100
    assert sum(d["labels"] for d in kept["delays"]) > 100
    assert kept["whole"]["with_label"].sum() > 100 and kept["whole_all"]["with_feedback"].sum() > 1000
    for name in ("labels", "thumbs", "segment", "whole", "whole_all", "whole_segment", "per_prediction",
                 "per_prediction_types", "arrivals", "label_arrivals"):  # fmt: skip
        pd.testing.assert_frame_equal(kept[name], joins[name], obj=name)
    assert kept["before"] == joins["before"] and kept["delays"] == joins["delays"]
    assert kept["quality_totals"] == joins["quality_totals"]
    if window is None:  # the demo's 9 traces with conflicting labels and 10 orphan feedback rows
        assert kept["quality_totals"]["conflicting_label_traces"] > 0 and kept["quality_totals"]["orphan_feedback"] > 0
    pd.testing.assert_frame_equal(kept["conflicts"], joins["conflicts"])
    pd.testing.assert_frame_equal(kept["orphans"], joins["orphans"])
    # and by hand: the outcome labels of the window's predictions per prediction day, and those correct
    with store.connect() as con:
        f = con.execute("SELECT trace_id, label FROM feedback WHERE type = 'outcome' AND label IS NOT NULL").df()
        p = con.execute("SELECT trace_id, ts, model_version, prediction FROM predictions").df()
    rows = f.merge(p, on="trace_id")
    w = window or Window()
    rows = rows[rows["ts"] >= w.start] if w.start else rows
    rows = rows[rows["ts"] < w.end] if w.end else rows
    rows = rows[rows["model_version"].isin(w.model_versions)] if w.model_versions else rows
    day = rows["ts"].dt.floor("D")
    by_hand = rows.assign(correct=rows["label"] == rows["prediction"]).groupby(day)[["label", "correct"]]
    counted = kept["labels"].set_index("bucket")
    assert counted["labels"].loc[counted["labels"] > 0].to_dict() == by_hand.count()["label"].to_dict()
    assert counted["correct"].loc[counted["labels"] > 0].to_dict() == by_hand.sum()["correct"].astype(int).to_dict()


def test_a_feedback_column_named_like_the_predictions_copy_gives_way_to_it(tmp_path, monkeypatch):
    """A user's feedback column ``p_ts`` (a file may bring any column) is not read as the prediction's ts: the delays
    are the same through the copies and through the join, and by hand."""
    from workbench.sources import trace_feedback

    d0 = START + 9 * H
    store = build(tmp_path / "p.duckdb", [prediction("a", d0), prediction("b", d0 + H, 0)],
                  [{**fb("a", d0 + 30 * H, "automated", "outcome", 1, 1), "p_ts": d0 - 900 * H},
                   {**fb("b", d0 + 51 * H, "automated", "outcome", 1, 1), "p_ts": d0 - 900 * H}])  # fmt: skip

    def delays():
        with store.ibis() as con:
            return label_delays_many(con, None, None, [None], shares=(0.5,), min_labels=1)[0]

    kept = delays()
    monkeypatch.setattr(trace_feedback, "copies_current", lambda backend: False)
    joined = delays()
    assert kept.labels == joined.labels == 2
    assert kept.quantiles == joined.quantiles == {0.5: 40.0}  # 30 h and 50 h after their predictions
