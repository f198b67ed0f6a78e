"""`workbench abtest` and `workbench power`: the --json contract (keys, exit codes, one-line errors), evidence."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest

from tests.conftest import ROOT
from tests.helpers.demo_stores import copy_demo
from workbench.demo.scenario import Scenario
from workbench.sources.evidence import latest_runs
from workbench.sources.store import Store

COMPARISON_KEYS = {"variant", "control", "diff", "diff_ci", "rel_lift", "rel_lift_ci", "p_value", "p_adjusted",
                   "significant", "prob_beat_control"}  # fmt: skip


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    target = tmp_path_factory.mktemp("ab-cli") / "workbench.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=20_000, days=30), target)[0]


def test_store_mode_gives_the_contract_json_and_records_the_run(small_store: Store) -> None:
    out = run("abtest", "--metric", "thumbs_up_rate", "--db", str(small_store.path), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {"arm", "n", "mean"} <= set(doc["arms"][0])
    assert {"p_value", "ok"} <= set(doc["srm"])
    assert doc["comparisons"] and set(doc["comparisons"][0]) >= COMPARISON_KEYS
    assert isinstance(doc["verdict"], str) and doc["verdict"]
    run_ = latest_runs(small_store)["abtest"]
    assert run_ is not None and run_.summary["verdict_text"] == doc["verdict"]
    assert run_.summary["srm"] == {"p_value": doc["srm"]["p_value"], "ok": doc["srm"]["ok"]}
    assert "aggregating" in out.stderr  # progress on stderr, stdout is one JSON document


def test_file_mode_matches_statsmodels(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    a, b = (rng.random(3000) < 0.2).astype(int), (rng.random(3000) < 0.23).astype(int)
    path = tmp_path / "units.csv"
    pd.DataFrame({"group": ["a"] * 3000 + ["b"] * 3000, "converted": np.r_[a, b]}).to_csv(path, index=False)
    out = run("abtest", "--file", str(path), "--arm-col", "group", "--metric-col", "converted", "--json")
    assert out.returncode == 0, out.stderr
    c = json.loads(out.stdout)["comparisons"][0]
    assert (c["control"], c["variant"]) == ("a", "b")
    assert c["p_value"] == pytest.approx(proportions_ztest([b.sum(), a.sum()], [3000, 3000])[1], abs=1e-9)


def test_summary_mode_flags_srm_and_exits_1_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("arm,n,successes\ncontrol,101600,30480\nvariant,98400,30504\n")
    out = run("abtest", "--summary-file", str(path), "--json")
    doc = json.loads(out.stdout)
    assert out.returncode == 0 and doc["srm"]["ok"] is False
    assert doc["srm"]["p_value"] == pytest.approx(stats.chisquare([101600, 98400]).pvalue, rel=1e-9)
    assert "untrustworthy" in doc["verdict"]
    assert run("abtest", "--summary-file", str(path), "--exit-code").returncode == 1


def test_means_summary_and_no_nan_in_json(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("arm,n,mean,std\ncontrol,1,3.0,0\nvariant,1,4.0,0\n")
    out = run("abtest", "--summary-file", str(path), "--json")
    assert out.returncode == 0, out.stderr
    assert "NaN" not in out.stdout and "Infinity" not in out.stdout
    assert json.loads(out.stdout)["verdict"].startswith("No verdict")


@pytest.mark.parametrize(
    "args",
    [
        ("abtest", "--summary-file", "/nonexistent/s.csv"),
        ("abtest", "--file", "x.csv"),
        ("abtest", "--summary-file", "s.csv", "--adjustment", "bonferroni"),
        ("power", "--baseline", "1.5", "--mde", "0.1"),
        ("power", "--baseline", "0.1", "--mde", "0.01", "--alpha", "2"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(args: tuple[str, ...]) -> None:
    out = run(*args)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_unknown_metric_in_the_store_is_exit_2(small_store: Store) -> None:
    out = run("abtest", "--metric", "revenue", "--db", str(small_store.path))
    assert out.returncode == 2 and "unknown metric 'revenue'" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(("baseline", "mde", "relative"), [(0.1, 0.02, False), (0.62, 0.05, True), (0.3, -0.03, False)])
def test_power_n_per_arm_is_statsmodels_rounded_up(baseline: float, mde: float, relative: bool) -> None:
    args = ["power", "--baseline", str(baseline), "--mde", str(mde), "--json"] + (["--relative"] if relative else [])
    out = run(*args)
    assert out.returncode == 0, out.stderr
    target = baseline * (1 + mde) if relative else baseline + mde
    h = proportion_effectsize(target, baseline)
    n = NormalIndPower().solve_power(effect_size=abs(h), alpha=0.05, power=0.8, ratio=1.0, alternative="two-sided")
    assert json.loads(out.stdout)["n_per_arm"] == math.ceil(n)


def test_power_for_means_uses_d_equals_delta_over_sigma() -> None:
    out = run("power", "--baseline", "50", "--mde", "2", "--std", "20", "--arms", "3", "--daily-units", "500", "--json")
    doc = json.loads(out.stdout)
    n = NormalIndPower().solve_power(effect_size=0.1, alpha=0.025, power=0.8, ratio=1.0)
    assert doc["n_per_arm"] == math.ceil(n)
    assert doc["days_needed"] == pytest.approx(3 * math.ceil(n) / 500)


def test_an_srm_recorded_from_the_cli_blocks_the_retrain_gate(small_store: Store, tmp_path: Path) -> None:
    from workbench.gate.decisions import gate_blockers

    path = tmp_path / "s.csv"
    path.write_text("arm,n,successes\ncontrol,101600,30480\nvariant,98400,30504\n")
    assert run("abtest", "--summary-file", str(path), "--db", str(small_store.path)).returncode == 0
    evidence = {family: r.to_dict() if r else None for family, r in latest_runs(small_store).items()}
    assert any("sample-ratio" in b for b in gate_blockers(evidence))
