"""`workbench fairness`: the JSON keys, file and store modes, exit codes, one-line errors, the run recorded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.fairness.test_fairness_stats import random_rows
from workbench.demo.scenario import Scenario, build_demo
from workbench.sources.evidence import latest_runs
from workbench.sources.store import Store

GROUP_KEYS = {"group", "n", "selection_rate", "accuracy", "tpr", "fpr", "fnr", "precision"}
DISPARITY_KEYS = {"demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                  "equalized_odds_ratio"}  # fmt: skip


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", "fairness", *args], cwd=ROOT, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("fairness-cli") / "workbench.duckdb")
    build_demo(store, Scenario(rows=20_000, days=30))
    return store


def test_file_mode_gives_the_contract_json(tmp_path):
    path = tmp_path / "rows.parquet"
    random_rows(9, 3000, 2).to_parquet(path)
    out = run("--file", str(path), "--label", "y", "--prediction", "yhat", "--sensitive", "s0,s1", "--json",
              "--resamples", "50")  # fmt: skip
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    assert document["verdict"] in ("pass", "fail", "insufficient")
    assert len(document["groups"]) == 6
    for group in document["groups"]:
        assert set(group) >= GROUP_KEYS
        assert isinstance(group["group"], str) and " × " in group["group"]
    assert set(document["disparities"]) >= DISPARITY_KEYS
    assert isinstance(document["flags"], list)
    assert "NaN" not in out.stdout and "Infinity" not in out.stdout


def test_store_mode_records_the_run_and_exit_code_says_fail(small_store, tmp_path):
    table = tmp_path / "groups.csv"
    out = run("--db", str(small_store.path), "--sensitive", "region", "--exit-code", "--csv", str(table),
              "--resamples", "100")  # fmt: skip
    assert out.returncode == 1, out.stderr  # the demo's south region has the injected higher FPR
    assert out.stdout.startswith("fail: FPR for region=south")
    assert table.read_text(encoding="utf-8").splitlines()[0].startswith("group,region,status,n,")
    lines = out.stdout.splitlines()
    header = next(line for line in lines if line.startswith("group "))
    assert header.split() == ["group", "n", "selection", "accuracy", "TPR", "FPR", "FNR", "precision", "status"]
    south = next(line for line in lines if line.startswith("south "))
    assert len(south.rstrip()) - len("fail") == len(header.rstrip()) - len("status")  # the columns line up
    run_ = latest_runs(small_store)["fairness"]
    assert run_.verdict == "fail"
    assert run_.summary["reference_group"] == "north" and run_.summary["sensitive"] == ["region"]
    assert run_.summary["verdict_text"].startswith("fail: FPR for region=south")
    assert any("south" in flag for flag in run_.summary["flags"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sensitive", "nope"), "no column 'nope'"),
        (("--sensitive", "region", "--reference-group", "mars"), "reference group 'mars' is not one of"),
        (("--sensitive", "region", "--label", "y"), "need --file"),
        (("--sensitive", "region", "--chunk", "month"), "--chunk must be day or week"),
        (("--sensitive", "region", "--metrics", "luck"), "unknown rate 'luck'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(small_store, args, message):
    out = run("--db", str(small_store.path), "--json", *args)  # --json: no progress lines on stderr
    assert out.returncode == 2 and out.stdout == ""
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_file_mode_without_label_is_refused(tmp_path):
    path = tmp_path / "rows.csv"
    random_rows(1, 100, 1).to_csv(path, index=False)
    out = run("--file", str(path), "--sensitive", "s0")
    assert out.returncode == 2 and "needs --label and --prediction" in out.stderr
