"""The exporter's numbers equal the analyses' own and an independent pandas/numpy computation from the raw rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.drift.request import DriftRequest
from workbench.drift.run import run as run_drift
from workbench.metrics.collector import Readings, VersionReadings, check_settings, collect
from workbench.metrics.families import families
from workbench.metrics.settings import MetricsSettings
from workbench.sources.base import StoreSource
from workbench.sources.store import Store
from workbench.stream.snapshot import add_rates, stream_snapshot
from workbench.stream.triggers import CheckRequest
from workbench.stream.triggers import run as run_check

HORIZON_S = 30 * 86_400  # [stream] delay_horizon_days: the mature cohort's age


def raw_tables(store):
    """Predictions and feedback as the store holds them (20,000 rows: small enough to recount by hand)."""
    with store.connect(read_only=True) as con:
        predictions = con.execute("SELECT trace_id, ts, model_version, prediction FROM predictions").df()
        feedback = con.execute("SELECT trace_id, ts, type, kind, label, value FROM feedback").df()
    return predictions, feedback


def by_version(readings: Readings) -> dict[str, VersionReadings]:
    return {v.model_version: v for v in readings.versions}


def test_the_labels_are_the_automated_outcomes_as_on_the_stream_page(readings):
    assert readings.label_types == ("outcome",)
    assert readings.errors == {}


def test_rates_per_version_equal_a_recount_from_the_raw_rows(metrics_store, readings):
    predictions, feedback = raw_tables(metrics_store[0])
    labels = feedback[feedback["label"].notna() & (feedback["type"] == "outcome")].merge(predictions, on="trace_id")
    thumbs = feedback[feedback["type"] == "thumb"].merge(predictions, on="trace_id")
    mine = by_version(readings)
    assert set(mine) == set(predictions["model_version"])
    for version, rows in predictions.groupby("model_version"):
        own = labels[labels["model_version"] == version]
        accuracy = (own["label"].astype(int) == own["prediction"]).mean()
        thumbs_up = (thumbs.loc[thumbs["model_version"] == version, "value"] == 1).mean()
        covered = rows["trace_id"].isin(feedback["trace_id"]).mean()
        labelled = rows["trace_id"].isin(own["trace_id"]).mean()
        got = mine[version]
        assert got.predictions == len(rows) and got.labels == len(own)
        assert got.online_accuracy == pytest.approx(accuracy, abs=1e-12)
        assert got.thumbs_up_rate == pytest.approx(thumbs_up, abs=1e-12)
        assert got.feedback_coverage == pytest.approx(covered, abs=1e-12)
        assert got.label_coverage == pytest.approx(labelled, abs=1e-12)


def test_rates_per_version_equal_the_stream_snapshots(metrics_store, readings):
    snapshot = stream_snapshot(metrics_store[0], None, "day", "model_version", ("outcome",))
    counts = snapshot.series.groupby("segment")[["correct", "labels", "thumbs_up", "thumbs"]].sum()
    totals = add_rates(snapshot.series.groupby("segment", as_index=False).sum(numeric_only=True)).set_index("segment")
    for version, got in by_version(readings).items():
        assert got.online_accuracy == counts.loc[version, "correct"] / counts.loc[version, "labels"]
        assert got.thumbs_up_rate == totals.loc[version, "thumbs_up_rate"]
        assert got.label_coverage == totals.loc[version, "coverage_labelled"]


def test_the_demo_versions_show_the_injected_concept_drift(metrics_store, readings):
    """v1 served before and after the concept drift (day 67), v2 only after it (from day 69)."""
    truth = metrics_store[1]["concept_drift"]
    mine = by_version(readings)
    assert mine["v2"].online_accuracy == pytest.approx(truth["accuracy_after"], abs=0.03)
    assert truth["accuracy_after"] < mine["v1"].online_accuracy < truth["accuracy_before"]


def test_label_delay_quantiles_equal_numpy_on_the_mature_cohort(metrics_store, readings):
    predictions, feedback = raw_tables(metrics_store[0])
    as_of = predictions["ts"].max()
    labels = feedback[feedback["label"].notna() & (feedback["type"] == "outcome")]
    joined = labels.merge(predictions, on="trace_id", suffixes=("", "_prediction"))
    for version, got in by_version(readings).items():
        own = joined[joined["model_version"] == version]
        mature = own[own["ts_prediction"] <= as_of - pd.Timedelta(seconds=HORIZON_S)]
        cohort, censored = (mature, False) if len(mature) >= 100 else (own, True)
        delays = ((cohort["ts"] - cohort["ts_prediction"]).dt.total_seconds()).clip(lower=0) / 3600
        assert got.label_delay_censored is censored
        assert sorted(got.label_delay_hours) == [0.5, 0.9, 0.95]
        for share, hours in got.label_delay_hours.items():
            assert hours == pytest.approx(np.quantile(delays, share), rel=1e-9)
    assert by_version(readings)["v2"].label_delay_censored  # v2 is 23 days old: no label is 30 days old yet


def test_quarantined_rows_by_reason_equal_the_quarantine_table(metrics_store, readings):
    with metrics_store[0].connect(read_only=True) as con:
        rows = con.execute("SELECT table_name, reason, count(*) FROM quarantine GROUP BY ALL").fetchall()
    assert readings.quarantined == {(t, r): n for t, r, n in rows}
    assert sum(readings.quarantined.values()) == 3


def test_psi_per_feature_equals_the_drift_analysis_and_finds_the_injected_drift(metrics_store, readings):
    """first:30d and last:7d of a store from 2026-01-01 to 2026-03-31 are these two windows."""
    store, truth, _ = metrics_store
    reference = Window(end=datetime(2026, 1, 31, tzinfo=UTC))
    current = Window(start=datetime(2026, 3, 25, tzinfo=UTC))
    analysis = run_drift(StoreSource(store), DriftRequest(reference, current, multivariate=False))
    assert {f.name: f.psi for f in readings.drift.features} == {f.name: f.psi for f in analysis.features}
    assert set(readings.drift.drifted) == set(truth["drifted_features"])
    assert readings.drift.settings["psi_threshold"] == 0.1


def test_rules_equal_workbench_checks_own(metrics_store, readings):
    store, _, rules = metrics_store
    check = run_check(store, CheckRequest(rules_path=rules))
    assert [(r.name, r.value, r.threshold, r.fired, r.error) for r in readings.check.rules] == [
        (r.name, r.value, r.threshold, r.fired, r.error) for r in check.rules
    ]
    states = {r.name: (r.fired, r.error is not None) for r in readings.check.rules}
    assert states == {
        "accuracy_drop": (True, False),  # the concept drift: outcome accuracy 0.56 < 0.70 for 3 days
        "label_pipeline_stalled": (False, False),
        "fpr_gap": (False, True),  # no column no_such_column
    }
    assert readings.check.fired


def test_a_failing_section_is_named_and_the_others_still_count(metrics_store, tmp_path):
    store = metrics_store[0]
    settings = MetricsSettings(drift_reference="2020-01-01..2020-01-31")  # no predictions then: no PSI at all
    found = collect(store, tmp_path / "missing.toml", settings)
    assert set(found.errors) == {"rules"} and "cannot read rules file" in found.errors["rules"]
    assert found.check is None and len(found.versions) == 2 and found.drift.verdict == "insufficient"
    assert "rules failed" in found.summary()
    samples = {s.name: s for f in families(found) for s in f.samples}
    assert not any(name.startswith("workbench_drift_psi{") for name in samples)
    assert "workbench_drift_psi" not in samples and "workbench_drift_dataset_drifted" not in samples
    assert [s.value for s in families(found)[-1].samples] == [1.0, 1.0, 0.0]  # section ok: stream, drift, rules


@pytest.mark.parametrize(("key", "text"), [("window", "last:7"), ("drift_current", "yesterday")])
def test_a_window_setting_that_cannot_be_read_is_refused_naming_the_key(key, text):
    with pytest.raises(InputError, match=rf"\[metrics\] {key}: "):
        check_settings(MetricsSettings(**{key: text}))


rates = st.none() | st.floats(0.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.text("abcv12._-", min_size=1, max_size=8), rates, rates, st.integers(0, 10**9)),
        max_size=4,
        unique_by=lambda t: t[0],
    )
)
def test_every_measured_number_is_one_sample_and_none_is_nan(rows):
    """Property: the exposition parses back to exactly the measured values, and an unmeasured one is absent."""
    versions = tuple(VersionReadings(v, n, 0, 0, accuracy, thumbs, None, None) for v, accuracy, thumbs, n in rows)
    readings = Readings(computed_at=1.0, seconds=0.5, versions=versions)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(type("C", (), {"collect": lambda self: iter(families(readings))})())
    samples = [s for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples]
    assert not any(math.isnan(s.value) for s in samples)
    accuracy = {s.labels["model_version"]: s.value for s in samples if s.name == "workbench_online_accuracy_ratio"}
    assert accuracy == {v: a for v, a, _, _ in rows if a is not None}
    predictions = {s.labels["model_version"]: s.value for s in samples if s.name == "workbench_predictions"}
    assert predictions == {v: float(n) for v, _, _, n in rows}


def test_a_store_without_predictions_publishes_what_it_can_and_names_the_rest(tmp_path, metrics_store):
    store = Store(tmp_path / "empty.duckdb")
    with store.connect(read_only=False):
        pass  # the tables, no rows
    found = collect(store, metrics_store[2], MetricsSettings())
    assert found.versions == () and found.quarantined == {} and found.as_of is None
    assert found.errors == {
        "drift": "the store has no predictions to take days from",
        "rules": "no predictions in the store (or in the selected window): nothing to check",
    }
    samples = [s for f in families(found) for s in f.samples]
    assert {s.name for s in samples} == {
        "workbench_metrics_computed_timestamp_seconds", "workbench_metrics_compute_duration_seconds",
        "workbench_metrics_refreshes_total", "workbench_metrics_section_ok",
    }  # fmt: skip
    assert not any(math.isnan(s.value) for s in samples)
