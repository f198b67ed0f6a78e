"""The trigger check as a result (core.result.Result) and its request: verdict, reasons, evidence, frame, JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.stream.test_triggers_store import ACCURACY, with_clock
from workbench.core.errors import InputError
from workbench.core.result import Result
from workbench.core.window import Window
from workbench.sources.base import StoreSource
from workbench.sources.evidence import latest_runs, record_once
from workbench.stream.request import CheckRequest
from workbench.stream.triggers import run


@pytest.fixture()
def fired(tmp_path):
    store = with_clock(tmp_path / "s.duckdb", {0: 0.9, 1: 0.6, 2: 0.55, 3: 0.5}, clock_day=4)
    return store, run(store, CheckRequest(rules_text=ACCURACY, source="rules.toml"))


def test_a_fired_check_is_a_result_with_its_reasons(fired):
    _, result = fired
    assert isinstance(result, Result) and result.family == "triggers"
    assert result.verdict == "fired" and result.verdict_text.startswith("Retrain trigger fired")
    (reason,) = result.reasons
    assert reason.startswith("accuracy_drop: online_accuracy = 0.5000 (< 0.7 for 3 days)")
    assert reason.endswith("fired since 2026-01-04")  # the third breaching day in a row
    frame = result.to_frame()
    assert list(frame["rule"]) == ["accuracy_drop"] and bool(frame["fires"][0])
    assert list(frame.columns) == list(result.table()[0])


def test_evidence_is_the_summary_and_json_the_check_document(fired):
    store, result = fired
    evidence = result.evidence()
    assert set(evidence) == {"verdict_text", "fired", "rules_file", "as_of", "rules"}
    assert evidence["fired"] == ["accuracy_drop"] and evidence["rules_file"] == "rules.toml"
    document = result.to_json()
    assert document["verdict"] == result.verdict_text and "series" not in document["rules"][0]
    assert "series" in result.to_json(with_series=True)["rules"][0]
    seen: set[str] = set()
    assert record_once(store, result, seen, ("rules",)) and not record_once(store, result, seen, ("rules",))
    assert latest_runs(store)["triggers"].summary == evidence


def test_a_quiet_check_has_no_reasons(tmp_path):
    store = with_clock(tmp_path / "s.duckdb", {0: 0.9, 1: 0.8, 2: 0.85}, clock_day=3)
    result = run(StoreSource(store), CheckRequest(rules_text=ACCURACY))
    assert result.verdict == "quiet" and result.reasons == () and result.verdict_text.startswith("No retrain")


def test_the_request_is_validated_once(tmp_path):
    with pytest.raises(InputError, match="either the rules text or a rules file"):
        CheckRequest()
    with pytest.raises(InputError, match="either the rules text or a rules file"):
        CheckRequest(rules_text=ACCURACY, rules_path=tmp_path / "r.toml")
    with pytest.raises(InputError, match="--start must be an ISO date"):
        CheckRequest.from_options(tmp_path / "r.toml", start="March")
    request = CheckRequest.from_options(str(tmp_path / "r.toml"), start="2026-01-02", model_versions=["v1"])
    assert request.window == Window(datetime(2026, 1, 2, tzinfo=UTC), None, ("v1",))
    assert CheckRequest(rules_text=ACCURACY, window=Window()).window is None
