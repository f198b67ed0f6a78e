"""FairnessRequest is validated once; run(source, request) in store and file mode equals the shorthands and the
CLI; FairnessAudit keeps the result contract; its MetricFrame-like accessors equal fairlearn's MetricFrame."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame

from tests.conftest import ROOT
from tests.fairness.test_fairness_queries import hand_store  # noqa: F401  (the fixture)
from tests.fairness.test_fairness_stats import FAIRLEARN_METRICS, random_rows
from workbench.core.errors import InputError
from workbench.core.result import Result
from workbench.core.window import Window
from workbench.fairness.audit import audit_file, audit_frame, audit_store
from workbench.fairness.request import FairnessRequest
from workbench.fairness.run import run
from workbench.sources.base import FileSource, StoreSource
from workbench.sources.evidence import latest_runs, record_once
from workbench.sources.store import Store
from workbench.stats.fairness import GROUP_METRICS, HEADLINE_DISPARITIES, FairnessSettings
from workbench.stats.fairness_verdict import FOUR_FIFTHS_NOTE, four_fifths_note

QUICK = FairnessSettings(bootstrap_resamples=50)


def _same(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}


# --- the request --------------------------------------------------------------------------------------------


def test_the_request_normalises_its_inputs(tmp_path: Path) -> None:
    request = FairnessRequest(sensitive="age_band, region", metrics="fpr,tpr", reference_group="  ",
                              population={"b": 1, "a": 3})  # fmt: skip
    assert request.sensitive == ("age_band", "region") and request.metrics == ("fpr", "tpr")
    assert request.reference_group is None and request.population == (("a", 3.0), ("b", 1.0))
    census = tmp_path / "census.csv"
    census.write_text("group,share\nnorth,0.6\nsouth,0.4\n", encoding="utf-8")
    assert FairnessRequest(("region",), population=census).population_shares() == {"north": 0.6, "south": 0.4}
    assert hash(request) == hash(FairnessRequest(("age_band", "region"), metrics=("fpr", "tpr"),
                                                 population=(("a", 3), ("b", 1))))  # fmt: skip
    settings = FairnessRequest(("region",), metrics=("fpr",), resamples=7, chunk="day", settings=QUICK)
    resolved = settings.resolved_settings()
    assert resolved.verdict_metrics == ("fpr",) and resolved.bootstrap_resamples == 7 and resolved.time_chunk == "day"
    assert FairnessRequest(("region",), settings=QUICK).resolved_settings() == QUICK


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sensitive": ()}, "--sensitive needs at least one column name"),
        ({"sensitive": " , "}, "--sensitive needs at least one column name"),
        ({"chunk": "month"}, "--chunk must be day or week, not 'month'"),
        ({"resamples": -1}, "--resamples must be 0 or more"),
        ({"metrics": ("luck",)}, "unknown rate 'luck'"),
        ({"window": Window(), "model_versions": ("v1",)}, "inside the Window"),
        ({"path": Path("x.csv"), "label": "y"}, "file mode needs --label and --prediction"),
        ({"path": Path("x.csv"), "label": "y", "prediction": "p", "window": "last:7d"}, "apply to the store"),
        ({"population": {"a": "many"}}, "share of 'a' is not a number"),
        ({"population": {"a": -1}}, "share of 'a' must be 0 or more"),
    ],
)
def test_a_bad_request_is_refused_once_in_one_line(fields: dict, message: str) -> None:
    fields = {"sensitive": ("region",), **fields}
    with pytest.raises(InputError, match=message) as info:
        FairnessRequest(**fields)
    assert "\n" not in str(info.value)


def test_a_missing_population_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such reference population file"):
        FairnessRequest(("region",), population=tmp_path / "absent.csv")


# --- run() in each mode ---------------------------------------------------------------------------------------


def test_run_on_the_store_equals_the_shorthand_and_refuses_file_columns(hand_store: Store) -> None:  # noqa: F811
    request = FairnessRequest(("region",), settings=QUICK, reference_group="north")
    audit = run(StoreSource(hand_store), request)
    assert _same(
        audit.to_json(), audit_store(hand_store, ["region"], settings=QUICK, reference_group="north").to_json()
    )
    assert audit.source["mode"] == "store" and audit.reference_group == "north"
    windowed = run(StoreSource(hand_store), FairnessRequest(("region",), window="2026-01-02..", settings=QUICK))
    assert (
        windowed.source["window"] == "from 2026-01-02" and windowed.labels["predictions"] < audit.labels["predictions"]
    )
    with pytest.raises(InputError, match="need --file"):
        run(StoreSource(hand_store), FairnessRequest(("region",), label="y"))
    with pytest.raises(InputError, match="no store here"):
        run(StoreSource(Store(hand_store.path.with_name("absent.duckdb"))), FairnessRequest(("region",)))


def test_run_on_a_file_equals_the_shorthand_and_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    random_rows(4, 2000, 2).to_parquet(path)
    request = FairnessRequest(("s0", "s1"), path=path, label="y", prediction="yhat", resamples=50)
    audit = run(FileSource(path), request)
    assert audit.source["mode"] == "file" and len(audit.groups) == 6
    assert _same(audit.to_json(), audit_file(path, "y", "yhat", ["s0", "s1"], resamples=50).to_json())
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "fairness", "--file", str(path), "--label", "y", "--prediction",
         "yhat", "--sensitive", "s0,s1", "--resamples", "50", "--json"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert _same(json.loads(out.stdout), json.loads(json.dumps(audit.to_json(), default=str)))
    with pytest.raises(InputError, match="needs --label and --prediction"):
        run(FileSource(path), FairnessRequest(("s0",)))


# --- the result contract ----------------------------------------------------------------------------------------


def test_the_audit_keeps_the_result_contract(hand_store: Store) -> None:  # noqa: F811
    audit = run(StoreSource(hand_store), FairnessRequest(("region",), settings=QUICK))
    assert isinstance(audit, Result) and audit.family == "fairness"
    assert audit.verdict == "fail" and audit.verdict_text.startswith("fail: 2 groups outside ×0.80–1.25")
    assert "region=south (FPR ratio 4.02" in audit.verdict_text  # every failing group named (issue 18)
    assert audit.reasons and all(isinstance(r, str) and "ratio" in r for r in audit.reasons)
    assert audit.evidence() == audit.run_summary()
    assert set(audit.evidence()["disparities"]) == set(HEADLINE_DISPARITIES)
    assert audit.to_json() == audit.to_dict()
    frame = audit.to_frame()
    assert list(frame["group"]) == [g["group"] for g in audit.groups] and frame["group"].is_unique
    assert {"region", "status", "n", "fpr", "fpr_ci_low", "fpr_ratio", "fpr_p_adjusted", "ece"} <= set(frame.columns)
    assert frame.set_index("group").loc["south", "status"] == "fail"
    assert audit.groups_csv().splitlines()[0] == ",".join(frame.columns)
    seen: set[str] = set()
    assert record_once(hand_store, audit, seen, ("page",)) and not record_once(hand_store, audit, seen, ("page",))
    run_ = latest_runs(hand_store)["fairness"]
    assert run_.verdict == "fail" and run_.summary == json.loads(json.dumps(audit.evidence(), default=str))


# --- MetricFrame-like accessors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("attributes", [1, 2])
def test_the_accessors_equal_fairlearns_metric_frame(attributes: int) -> None:
    frame = random_rows(30 + attributes, 5000, attributes)
    columns = [f"s{i}" for i in range(attributes)]
    audit = audit_frame(frame, "y", "yhat", columns, settings=FairnessSettings(bootstrap_resamples=0))
    sf = frame[columns] if attributes > 1 else frame["s0"]
    mf = MetricFrame(metrics=FAIRLEARN_METRICS, y_true=frame["y"], y_pred=frame["yhat"], sensitive_features=sf)
    expected = mf.by_group
    expected.index = [" × ".join(map(str, k)) if isinstance(k, tuple) else str(k) for k in expected.index]
    by_group = audit.by_group
    assert list(by_group.columns) == list(GROUP_METRICS) and by_group.index.name == "group"
    pd.testing.assert_frame_equal(by_group.sort_index(), expected.sort_index()[list(GROUP_METRICS)],
                                  check_names=False, rtol=0, atol=1e-12)  # fmt: skip
    pd.testing.assert_series_equal(audit.overall, mf.overall[list(GROUP_METRICS)].astype(float), check_names=False,
                                   rtol=0, atol=1e-12)  # fmt: skip
    for metric in GROUP_METRICS:
        assert audit.difference(metric) == pytest.approx(mf.difference()[metric], abs=1e-12), metric
        assert audit.ratio(metric) == pytest.approx(mf.ratio()[metric], abs=1e-12), metric
        assert audit.difference(metric) == pytest.approx(audit.disparities[f"{metric}_difference"], abs=1e-12)
        assert audit.ratio(metric) == pytest.approx(audit.disparities[f"{metric}_ratio"], abs=1e-12)
    with pytest.raises(InputError, match="unknown rate 'luck'"):
        audit.ratio("luck")


def test_an_undefined_rate_is_nan_and_left_out_of_difference_and_ratio() -> None:
    frame = pd.DataFrame({"g": ["a"] * 40 + ["b"] * 40, "y": [1, 0] * 20 + [1] * 40, "p": [1, 0, 0, 1] * 20})
    audit = audit_frame(frame, "y", "p", ["g"], settings=FairnessSettings(bootstrap_resamples=0))
    assert np.isnan(audit.by_group.loc["b", "fpr"])  # no negatives in b: fairlearn would say 0
    assert audit.difference("fpr") == 0.0 and audit.ratio("fpr") == 1.0  # only a is defined
    assert audit.overall["fpr"] == pytest.approx(audit.by_group.loc["a", "fpr"])


def test_the_four_fifths_note_names_the_settings_threshold() -> None:
    assert four_fifths_note() == four_fifths_note(0.8) == FOUR_FIFTHS_NOTE and "below 80% of" in FOUR_FIFTHS_NOTE
    assert "below 70% (the settings' four_fifths; the rule says 80%) of" in four_fifths_note(0.7)
