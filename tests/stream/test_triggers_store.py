"""Rules evaluated on small explicit stores: every value is a hand count; `workbench check` exit codes and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.helpers.stream_data import ROLES, START, build, daily_accuracy
from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.gate.decisions import decide
from workbench.ingest.pipeline import ingest_frames
from workbench.sources.evidence import latest_runs
from workbench.stream.triggers import check, parse

ACCURACY = """
[[rule]]
name = "accuracy_drop"
metric = "online_accuracy"
op = "<"
threshold = 0.7
for = 3
min_n = 50
"""


def rules(text: str):
    return parse(text, "rules.toml")


def with_clock(path, accuracy: dict[int, float], clock_day: int, **kw):
    """daily_accuracy plus one prediction at 06:00 of ``clock_day`` (moves as_of past the last full day)."""
    store = daily_accuracy(path, accuracy, **kw)
    ts = START + pd.Timedelta(days=clock_day, hours=6)
    frame = pd.DataFrame([{"trace_id": "clock", "ts": ts, "model_version": "v1", "prediction": 0, "score": 0.1,
                           "region": "north"}])  # fmt: skip
    ingest_frames(store, [(frame, "predictions")], ROLES, source="clock")
    return store


def by_bucket(result):
    return {row["bucket"]: row for row in result.series_records()}


def test_online_accuracy_per_day_is_the_share_of_correct_labels(tmp_path):
    store = with_clock(tmp_path / "s.duckdb", {0: 0.9, 1: 0.81, 2: 0.55}, clock_day=3)
    (result,) = check(store, rules(ACCURACY)).rules
    rows = by_bucket(result)
    assert [rows[d]["value"] for d in ("2026-01-01", "2026-01-02", "2026-01-03")] == [0.9, 0.81, 0.55]
    assert [rows[d]["n"] for d in ("2026-01-01", "2026-01-02", "2026-01-03")] == [100, 100, 100]
    assert result.bucket == "2026-01-03" and result.value == 0.55 and not result.fired


def test_a_day_without_predictions_breaks_the_streak(tmp_path):
    # bad on days 3, 5, 6, 7; nothing at all on day 4
    store = with_clock(tmp_path / "s.duckdb", {0: 0.9, 1: 0.9, 2: 0.9, 3: 0.5, 5: 0.5, 6: 0.5, 7: 0.5}, clock_day=8)
    (result,) = check(store, rules(ACCURACY)).rules
    rows = by_bucket(result)
    assert rows["2026-01-05"]["n"] == 0 and rows["2026-01-05"]["evaluable"] is False
    assert result.fired_buckets == ["2026-01-08"]
    assert result.fired and result.since == "2026-01-08" and result.streak == 3


def test_the_partial_last_day_is_left_out(tmp_path):
    # no clock row: the newest prediction is on day 3 itself, so day 3 is still filling
    store = daily_accuracy(tmp_path / "s.duckdb", {0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5})
    (result,) = check(store, rules(ACCURACY)).rules
    assert result.bucket == "2026-01-03" and result.pending_buckets == 1
    assert result.fired_buckets == ["2026-01-03"]


def test_hour_windows_work_end_to_end(tmp_path):
    predictions, feedback = [], []
    shares = {9: 0.9, 10: 0.4, 11: 0.4, 12: 0.4, 13: 0.9}
    for hour, share in shares.items():
        for i in range(60):
            trace, ts = f"h{hour}-{i}", START + pd.Timedelta(hours=hour, minutes=i)
            predictions.append({"trace_id": trace, "ts": ts, "model_version": "v1", "prediction": 1})
            label = int(i < share * 60)
            feedback.append({"trace_id": trace, "ts": ts + pd.Timedelta(minutes=1), "kind": "automated",
                             "type": "outcome", "value": float(label), "label": label})  # fmt: skip
    predictions.append({"trace_id": "clock", "ts": START + pd.Timedelta(hours=14, minutes=5),
                        "model_version": "v1", "prediction": 0})  # fmt: skip
    store = build(tmp_path / "s.duckdb", predictions, feedback)
    text = ACCURACY.replace('op = "<"', 'op = "<"\nwindow = "hour"\nlabels_settled = 0')
    (result,) = check(store, rules(text)).rules
    rows = by_bucket(result)
    assert rows["2026-01-01T10:00Z"]["value"] == pytest.approx(24 / 60)
    assert result.fired_buckets == ["2026-01-01T12:00Z"]
    assert result.bucket == "2026-01-01T13:00Z" and not result.fired and result.pending_buckets == 1


def test_labels_settle_by_the_measured_delay_before_a_day_is_judged(tmp_path):
    # every label arrives 30 h after its prediction: at as_of = day 6 06:00, day 5 (ended 6 h ago) is not settled
    store = with_clock(tmp_path / "s.duckdb", {d: 0.5 for d in range(6)}, clock_day=6, delay=pd.Timedelta(hours=30))
    (result,) = check(store, rules(ACCURACY + "labels_settled = 0.5\n")).rules
    assert result.settle_hours == pytest.approx(30.0)
    assert result.bucket == "2026-01-05" and result.pending_buckets == 2  # day 5 unsettled, day 6 partial
    (eager,) = check(store, rules(ACCURACY + "labels_settled = 0\n")).rules
    assert eager.bucket == "2026-01-06" and eager.settle_hours is None


def test_new_labels_since_retrain_counts_arrivals_after_the_last_approval(tmp_path):
    store = with_clock(tmp_path / "s.duckdb", {d: 0.8 for d in range(6)}, clock_day=6)
    text = '[[rule]]\nname = "labels"\nmetric = "new_labels_since_retrain"\nop = ">="\nthreshold = 250\n'
    (before,) = check(store, rules(text)).rules
    assert before.value == 600 and before.bucket == "2026-01-07"  # every label, read now
    assert by_bucket(before)["2026-01-03"]["value"] == 300  # days 0-2 by the end of day 2
    # approved on day 3 at 12:00: day 3's labels arrived 09:00–17:15, 48 of them by noon
    decide(store, "approve", "ana", "fresh labels", now=datetime.fromisoformat("2026-01-04T12:00:00+00:00"))
    (after,) = check(store, rules(text)).rules
    rows = by_bucket(after)
    assert rows["2026-01-03"]["value"] == 300  # before the approval nothing changes
    assert rows["2026-01-04"]["value"] == 100 - 36  # labels after 12:00 on day 3: 09:05 + 5 min × i ≥ 12:00
    assert after.value == 600 - 300 - 36 and after.fired and after.since == "2026-01-06"


def test_days_since_retrain_counts_from_the_first_prediction_without_approvals(tmp_path):
    store = with_clock(tmp_path / "s.duckdb", {d: 0.8 for d in range(4)}, clock_day=4)
    text = '[[rule]]\nname = "cooldown"\nmetric = "days_since_retrain"\nop = ">="\nthreshold = 2\n'
    (result,) = check(store, rules(text)).rules
    first = START + pd.Timedelta(hours=8)  # the first prediction
    rows = by_bucket(result)
    assert rows["2026-01-01"]["value"] == pytest.approx((START + pd.Timedelta(days=1) - first) / pd.Timedelta(days=1))
    assert result.value == pytest.approx((START + pd.Timedelta(days=4, hours=6) - first) / pd.Timedelta(days=1))
    assert result.fired and result.since == "2026-01-03"


def test_an_approval_recorded_after_the_newest_prediction_counts_as_now(tmp_path):
    store = with_clock(tmp_path / "s.duckdb", {d: 0.8 for d in range(4)}, clock_day=4)
    decide(store, "approve", "ana", "retrained today")  # wall clock: long after the 2026-01 data
    text = '[[rule]]\nname = "cooldown"\nmetric = "days_since_retrain"\nop = ">="\nthreshold = 2\n'
    (result,) = check(store, rules(text)).rules
    assert result.value == 0.0 and not result.fired
    assert result.fired_buckets == ["2026-01-03", "2026-01-04"]  # history is unchanged


def test_a_rule_can_watch_one_model_version(tmp_path):
    store = with_clock(tmp_path / "s.duckdb", {0: 0.5, 1: 0.5, 2: 0.5}, clock_day=3, version="v2")
    text = ACCURACY + 'model_versions = ["v1"]\n'
    (result,) = check(store, rules(text)).rules
    assert result.value is None and not result.fired
    assert "no complete day with at least 50 labels" in result.reason
    (v2,) = check(store, rules(ACCURACY + 'model_versions = ["v2"]\n')).rules
    assert v2.fired


def test_the_global_window_narrows_what_the_rules_see(tmp_path):
    store = with_clock(tmp_path / "s.duckdb", {0: 0.5, 1: 0.5, 2: 0.5, 3: 0.9}, clock_day=4)
    window = Window(start=datetime.fromisoformat("2026-01-02T00:00:00+00:00"))
    (result,) = check(store, rules(ACCURACY), window).rules
    assert result.fired_buckets == []  # days 1, 2 bad; day 0 outside the window


def test_check_json_lists_every_rule_with_value_threshold_fired_and_since(tmp_path):
    store = with_clock(tmp_path / "s.duckdb", {0: 0.9, 1: 0.5, 2: 0.5, 3: 0.5}, clock_day=4)
    text = ACCURACY + (
        '[[rule]]\nname = "volume"\nmetric = "prediction_volume"\nop = "<"\nthreshold = 10\n'
        '[[group]]\nname = "both"\nmode = "all"\nrules = ["accuracy_drop", "volume"]\n'
    )
    document = check(store, rules(text)).to_json(with_series=True)
    json.dumps(document, allow_nan=False)  # strict JSON: no NaN or infinity anywhere
    assert document["fired"] is False and document["top_level"] == ["both"]
    accuracy, volume = document["rules"]
    assert {"name", "metric", "value", "threshold", "fired", "since", "bucket", "n", "fired_buckets"} <= set(accuracy)
    assert (accuracy["value"], accuracy["threshold"], accuracy["fired"]) == (0.5, 0.7, True)
    assert accuracy["since"] == "2026-01-04"
    assert (volume["value"], volume["fired"], volume["since"]) == (100.0, False, None)
    assert document["groups"][0]["fired"] is False and document["groups"][0]["rules"] == ["accuracy_drop", "volume"]
    assert len(accuracy["series"]) == 5


def test_an_empty_window_is_bad_input(tmp_path):
    store = with_clock(tmp_path / "s.duckdb", {0: 0.9}, clock_day=1)
    with pytest.raises(InputError, match="no predictions"):
        check(store, rules(ACCURACY), Window(model_versions=("v9",)))


def cli(*args, db):
    env = {**os.environ, "WORKBENCH_DB": str(db)}
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_exit_codes_are_0_quiet_1_fired_2_bad_input(tmp_path):
    store = with_clock(tmp_path / "s.duckdb", {0: 0.9, 1: 0.5, 2: 0.5, 3: 0.5}, clock_day=4)
    fires = tmp_path / "fires.toml"
    fires.write_text(ACCURACY)
    quiet = tmp_path / "quiet.toml"
    quiet.write_text(ACCURACY.replace("threshold = 0.7", "threshold = 0.3"))
    broken = tmp_path / "broken.toml"
    broken.write_text(ACCURACY.replace("for = 3", "for = -3"))

    fired = cli("check", "--rules", str(fires), "--json", db=store.path)
    assert fired.returncode == 1, fired.stderr
    document = json.loads(fired.stdout)
    assert document["fired"] is True and document["rules"][0]["since"] == "2026-01-04"
    assert latest_runs(store)["triggers"].verdict == "fired"

    ok = cli("check", "--rules", str(quiet), db=store.path)
    assert ok.returncode == 0, ok.stderr
    assert "No retrain trigger" in ok.stdout
    assert latest_runs(store)["triggers"].summary["verdict_text"].startswith("No retrain trigger")

    bad = cli("check", "--rules", str(broken), db=store.path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: {broken} line 7: rule 'accuracy_drop': 'for' must be a whole number ≥ 1, not -3"
    ]
    missing = cli("check", "--rules", str(fires), db=tmp_path / "nowhere.duckdb")
    assert missing.returncode == 2 and "no store" in missing.stderr and "Traceback" not in missing.stderr
    usage = cli("check", db=store.path)
    assert usage.returncode == 2 and "usage error: Missing parameter: rules" in usage.stderr
    window = cli("check", "--rules", str(fires), "--start", "yesterday", db=store.path)
    assert window.returncode == 2 and "--start must be an ISO date" in window.stderr
