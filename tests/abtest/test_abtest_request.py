"""ABTestRequest (validated once), run(source, request) in each mode, and ABTestResult as a core.result.Result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers.demo_stores import copy_demo
from workbench.abtest.analyse import analyse_file, analyse_store, analyse_summary, parse_summary_file
from workbench.abtest.request import ABTestRequest, parse_split
from workbench.abtest.result import ABTestResult, ABTestSettings, export
from workbench.abtest.run import run
from workbench.core.errors import InputError
from workbench.core.result import Result
from workbench.core.window import Window
from workbench.sources.base import FileSource, StoreSource
from workbench.sources.evidence import latest_runs, record_once
from workbench.sources.store import Store

ROWS = ({"arm": "control", "n": "20000", "successes": "6000"}, {"arm": "variant", "n": "20000", "successes": "6400"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "lake"}, "mode must be store, file or summary"),
        ({"alpha": 1.5}, "--alpha must be between 0 and 1"),
        ({"alpha": 0.0}, "--alpha must be between 0 and 1"),
        ({"adjustment": "bonferroni"}, "--adjustment must be holm, bh or none"),
        ({"arm_source": "cohort"}, "--arm-source must be auto, arm or model_version"),
        ({"sequential_tuning_n": 0}, "tuning N\\* must be positive"),
        ({"guardrail_margin": 1.0}, "guardrail margin must be between 0 and 1"),
        ({"metrics": ("revenue",)}, "unknown metric 'revenue'"),
        ({"guardrails": ("latency",)}, "unknown metric 'latency'"),
        ({"arm_col": "arm"}, "apply to --file"),
        ({"mode": "summary", "pre_col": "x"}, "apply to --file"),
        ({"mode": "file", "arm_col": "arm"}, "--file needs --arm-col and --metric-col"),
        ({"mode": "file", "arm_col": "a", "metric_col": "m", "kind": "median"}, "--type must be proportion, mean"),
        ({"mode": "file", "arm_col": "a", "metric_col": "m", "kind": "ratio"}, "--type ratio needs --denominator-col"),
        ({"planned_split": "a=0.5,b=x"}, "planned split 'a=0.5,b=x'"),
        ({"planned_split": {"a": 0.5, "b": 0}}, "every share must be positive"),
    ],
)
def test_a_bad_request_is_one_line_input_error_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message) as error:
        ABTestRequest(**kwargs)
    assert "\n" not in str(error.value)


def test_the_request_normalises_names_splits_windows_and_guardrails() -> None:
    request = ABTestRequest(metrics=["thumbs_up_rate, mean_rating"], guardrails=["none"], window=Window(),
                            planned_split="champion=0.5,challenger=0.5", control="")  # fmt: skip
    assert request.metrics == ("thumbs_up_rate", "mean_rating") and request.guardrails == ()
    assert request.window is None and request.control is None
    assert request.split == {"champion": 0.5, "challenger": 0.5} == parse_split("champion=0.5,challenger=0.5")
    assert ABTestRequest(planned_split={"a": 1, "b": 3}).planned_split == (("a", 1.0), ("b", 3.0))
    assert ABTestRequest().split is None and ABTestRequest().guardrails is None
    assert ABTestRequest(mode="file", arm_col="a", metric_col="m", metrics=("revenue",)).metrics == ("revenue",)


def test_resolved_settings_apply_the_overrides_over_the_base() -> None:
    base = ABTestSettings(capping_percentile=0.95)
    resolved = ABTestRequest(alpha=0.01, adjustment="bh", sequential_tuning_n=800.0, guardrail_margin=0.1,
                             settings=base).resolved_settings()  # fmt: skip
    assert (resolved.alpha, resolved.adjustment, resolved.sequential_tuning_n, resolved.guardrail_margin) == (
        0.01, "bh", 800.0, 0.1)  # fmt: skip
    assert resolved.capping_percentile == 0.95
    assert ABTestRequest(settings=base).resolved_settings() == base


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    from workbench.demo.scenario import Scenario

    target = tmp_path_factory.mktemp("ab-request") / "small.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=20_000, days=30), target)[0]


def test_run_in_store_mode_equals_analyse_store(small_store: Store) -> None:
    request = ABTestRequest(metrics=("thumbs_up_rate",), guardrails=("dwell_time",))
    steps: list[str] = []
    result = run(StoreSource(small_store), request, steps.append)
    assert _same(result, analyse_store(small_store, request)) and steps
    with pytest.raises(InputError, match="no store at"):
        run(StoreSource(Store(small_store.path.with_name("missing.duckdb"))), request)
    with pytest.raises(InputError, match="reads a store"):
        run(FileSource(small_store.path), request)


def test_run_in_file_mode_equals_analyse_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    path = tmp_path / "units.csv"
    pd.DataFrame({"arm": ["a"] * 2000 + ["b"] * 2000, "y": rng.normal(10, 3, 4000)}).to_csv(path, index=False)
    request = ABTestRequest(mode="file", arm_col="arm", metric_col="y", kind="mean", alpha=0.01)
    result = run(FileSource(path), request)
    assert _same(result, analyse_file(path, request)) and result.alpha == 0.01
    with pytest.raises(InputError, match="file mode"):
        run(StoreSource(Store(tmp_path / "x.duckdb")), request)


def test_run_in_summary_mode_reads_rows_or_a_summary_file(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("arm,n,successes\ncontrol,20000,6000\nvariant,20000,6400\n")
    request = ABTestRequest(mode="summary")
    from_file = run(FileSource(path), request)
    from_rows = run(None, ABTestRequest(mode="summary", rows=ROWS))
    assert _same(from_file, analyse_summary(parse_summary_file(path), request))
    assert _same(from_file, from_rows)
    with pytest.raises(InputError, match="typed-in rows or a summary file"):
        run(None, request)


def test_the_result_conforms_to_the_result_contract() -> None:
    result = run(None, ABTestRequest(mode="summary", rows=ROWS))
    assert isinstance(result, Result) and ABTestResult.family == "abtest"
    assert result.verdict == "ship" and result.verdict_text.startswith("Ship variant:")
    doc = result.to_json()
    assert doc == result.to_dict() == json.loads(export(result, "json"))
    assert doc["verdict"] == result.verdict_text and doc["verdict_word"] == result.verdict  # the CLI's names
    assert "verdict_text" not in doc
    evidence = result.evidence()
    assert evidence["verdict"] == "ship" and evidence["verdict_text"] == result.verdict_text
    assert set(evidence) == {"verdict_text", "verdict", "source", "srm", "control", "variants", "period",
                             "comparisons"}  # fmt: skip
    frame = result.to_frame()
    assert len(frame) == len(result.comparisons) + len(result.guardrails)
    assert frame.to_dict("records") == result.rows() and list(frame["verdict"]) == ["ship"]
    reasons = result.reasons
    assert isinstance(reasons, tuple) and reasons[0].startswith("SRM: p=") and "0.001" in reasons[0]
    assert any("α=0.05" in line and "conversion" in line for line in reasons[1:])


def test_record_once_keeps_the_evidence_for_the_gate(small_store: Store) -> None:
    result = run(StoreSource(small_store), ABTestRequest(metrics=("thumbs_up_rate",)))
    seen: set[str] = set()
    assert record_once(small_store, result, seen, ("ctx",)) and not record_once(small_store, result, seen, ("ctx",))
    latest = latest_runs(small_store)["abtest"]
    assert latest is not None and latest.verdict == result.verdict and latest.summary == result.evidence()


def _same(a: ABTestResult, b: ABTestResult) -> bool:
    return json.dumps(a.to_json(), sort_keys=True) == json.dumps(b.to_json(), sort_keys=True)
