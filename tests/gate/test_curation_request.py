"""The curation's request (validated once) and its result (the contract: verdict, reasons, manifest as JSON)."""

from __future__ import annotations

import json

import pytest

from workbench.core.errors import InputError
from workbench.demo.scenario import Scenario, build_demo
from workbench.gate.curate import CurationResult, export, run
from workbench.gate.request import CurationRequest, CurationSpec
from workbench.sources.store import Store


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("curation") / "demo.duckdb")
    build_demo(store, Scenario(rows=3_000, days=20))
    return store


def test_a_bad_spec_or_request_is_refused_once_with_one_line(tmp_path):
    with pytest.raises(InputError, match="conflict policy must be drop or majority, not 'coin'"):
        CurationSpec(conflict_policy="coin")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="rebalance method must be oversample or reweigh"):
        CurationSpec(rebalance_attribute="region", rebalance_method="smote")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="start must be an ISO date"):
        CurationSpec(start="yesterday")
    with pytest.raises(InputError, match="unknown export format 'xlsx'"):
        CurationRequest(CurationSpec(), tmp_path, "xlsx")
    assert CurationRequest(CurationSpec(), str(tmp_path)).out_dir == tmp_path  # type: ignore[arg-type]


def test_the_curation_result_is_the_manifest_it_wrote(small, tmp_path):
    result = run(small, CurationRequest(CurationSpec(outlier_z=None), tmp_path / "out", "csv", "tester"))
    assert isinstance(result, CurationResult) and result.family == "curation" and result.verdict == "exported"
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert written == json.loads(json.dumps(result.to_json(), default=str)) and result.evidence() is result.manifest
    assert result.verdict_text.startswith(f"{written['rows']:,} rows → {tmp_path / 'out' / 'retraining_set.csv'}")
    assert result.reasons[0] == f"conflicts dropped {written['report']['conflicts_dropped']:,}"
    assert list(result.to_frame()["name"]) == [c["name"] for c in written["columns"]]
    assert written["created_by"] == "tester" and written["filters"] == json.loads(
        json.dumps(CurationSpec(outlier_z=None).to_dict())
    )
    # export() is the same run, returning the manifest
    again = export(small, CurationSpec(outlier_z=None), tmp_path / "again", fmt="csv")
    assert again["sha256"] == written["sha256"]
