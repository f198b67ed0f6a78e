"""Fairness trade-offs end to end: model versions on accuracy vs disparity, and the ThresholdOptimizer preview,
through the engine (a data frame, the demo store, the CLI) against scikit-learn and fairlearn on the same rows,
and the demo's injected truth (south's scores are pushed up for its true negatives, so under equalized odds it
needs the highest threshold)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import equalized_odds_difference
from sklearn.metrics import accuracy_score
from typer.testing import CliRunner

from tests.fairness.test_threshold_optimizer import BINS, fairlearn_pmf
from workbench.cli import app
from workbench.core.errors import InputError
from workbench.demo.scenario import Scenario, build_demo
from workbench.fairness import queries as q
from workbench.fairness.audit import audit_frame, audit_store
from workbench.gate.decisions import decide, read_decisions
from workbench.sources.evidence import latest_runs
from workbench.sources.store import Store
from workbench.stats.fairness import FairnessSettings

QUICK = FairnessSettings(bootstrap_resamples=200)


def versioned_rows(seed: int = 5, n: int = 8000) -> pd.DataFrame:
    """Two versions, v2 the sharper scorer; group b's negatives get higher scores; scores at bin centres."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], n, p=[0.45, 0.35, 0.2])
    version = rng.choice(["v1", "v2"], n)
    y = (rng.random(n) < 0.4).astype(int)
    sharp = np.where(version == "v2", 2.0, 1.0)
    logit = rng.normal(0, 1, n) + sharp * (2 * y - 1) + 0.8 * ((group == "b") & (y == 0))
    score = (np.clip(np.floor(1 / (1 + np.exp(-logit)) * BINS), 0, BINS - 1) + 0.5) / BINS
    return pd.DataFrame({"group": group, "v": version, "y": y, "yhat": (score >= 0.5).astype(int), "score": score})


@pytest.fixture(scope="module")
def frame_audit():
    frame = versioned_rows()
    audit = audit_frame(frame, "y", "yhat", ["group"], score="score", model_version="v", compare_versions=True,
                        mitigate="equalized_odds", settings=QUICK)  # fmt: skip
    return frame, audit


def test_each_version_is_a_point_with_sklearns_accuracy_and_fairlearns_disparity(frame_audit) -> None:
    frame, audit = frame_audit
    points = {p["version"]: p for p in audit.comparison["versions"]}
    assert set(points) == {"v1", "v2"}
    for version, point in points.items():
        part = frame[frame["v"] == version]
        assert point["accuracy"] == pytest.approx(accuracy_score(part["y"], part["yhat"]), abs=1e-12)
        expected = equalized_odds_difference(part["y"], part["yhat"], sensitive_features=part["group"])
        assert point["disparity"] == pytest.approx(expected, abs=1e-12)
        assert point["accuracy_ci"][0] <= point["accuracy"] <= point["accuracy_ci"][1]
        assert point["disparity_ci"][0] <= point["disparity"] <= point["disparity_ci"][1]
    # v2 scores more sharply: more accurate; the verdict is said in words with both changes
    assert points["v2"]["accuracy"] > points["v1"]["accuracy"] + 0.05
    comparison = audit.comparison
    assert (comparison["champion"], comparison["challenger"]) == ("v1", "v2")
    assert comparison["verdict"] in ("better", "tradeoff") and "accuracy +0." in comparison["verdict_text"]
    assert "v2" in comparison["front"]


def test_mitigation_through_the_engine_equals_fairlearn_on_the_rows(frame_audit) -> None:
    frame, audit = frame_audit
    m = audit.mitigation
    pmf, model = fairlearn_pmf(frame, "equalized_odds")
    y = frame["y"].to_numpy()
    assert m["accuracy_after"] == pytest.approx(float(np.mean(np.where(y == 1, pmf, 1 - pmf))), abs=1e-9)
    assert m["accuracy_before"] == pytest.approx(accuracy_score(frame["y"], frame["yhat"]), abs=1e-12)
    assert m["disparity_before"] == pytest.approx(
        equalized_odds_difference(frame["y"], frame["yhat"], sensitive_features=frame["group"]), abs=1e-12
    )
    assert m["disparity_after"] == pytest.approx(0, abs=1e-9) and m["x"] == pytest.approx(model._x_best, abs=1e-12)
    for row in m["groups"]:
        mask = (frame["group"] == row["group"]).to_numpy()
        assert row["tpr_after"] == pytest.approx(pmf[mask & (y == 1)].mean(), abs=1e-9)
        assert row["fpr_after"] == pytest.approx(pmf[mask & (y == 0)].mean(), abs=1e-9)
    high = m["disparity_change_ci"][1]
    assert (
        high < 0 and m["verdict"] == "reduces" and m["verdict_text"].startswith("reduces: preview of post-processing")
    )
    assert "not a retrained model" in m["note"]


def test_the_thresholds_are_in_the_json_the_csv_and_the_gates_evidence(frame_audit) -> None:
    _, audit = frame_audit
    document = json.loads(json.dumps(audit.to_json(), allow_nan=False))
    assert document["mitigation"]["constraint"] == "equalized_odds"
    assert [t["group"] for t in document["mitigation"]["thresholds"]] == ["a", "b", "c"]
    assert document["model_comparison"]["disparity"] == "equalized_odds_difference"
    evidence = audit.evidence()
    assert evidence["mitigation"]["thresholds"] == document["mitigation"]["thresholds"]
    assert evidence["model_comparison"]["verdict"] == audit.comparison["verdict"]
    lines = audit.thresholds_csv().splitlines()
    assert lines[0] == "group,threshold_0,p_0,threshold_1,p_1,p_ignore,constant,operator,rule" and len(lines) == 4


def test_a_group_with_one_class_or_no_scores_gives_no_thresholds_and_says_why() -> None:
    frame = versioned_rows(n=3000)
    frame.loc[frame["group"] == "c", "y"] = 0
    audit = audit_frame(frame, "y", "yhat", ["group"], score="score", mitigate="demographic_parity", settings=QUICK)
    assert audit.mitigation["verdict"] == "insufficient" and audit.mitigation["thresholds"] == []
    assert "group=c: labels of one class only" in audit.mitigation["verdict_text"]
    unscored = audit_frame(frame, "y", "yhat", ["group"], mitigate="equalized_odds", compare_versions=True)
    assert unscored.mitigation["verdict_text"] == "insufficient: no labelled predictions with a score in scope"
    assert unscored.comparison is None and "no model versions in scope" in " ".join(unscored.warnings)
    assert audit.thresholds_csv() == ""


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("fairness-tradeoffs") / "workbench.duckdb")
    build_demo(store, Scenario(rows=20_000, days=30))
    return store


def test_on_the_demo_the_biased_region_needs_the_highest_threshold(small_store) -> None:
    audit = audit_store(small_store, ["region"], compare_versions=True, mitigate="equalized_odds", settings=QUICK)
    m = audit.mitigation
    mean = {t["group"]: t["p_0"] * t["threshold_0"] + t["p_1"] * t["threshold_1"] for t in m["thresholds"]}
    assert max(mean, key=mean.get) == "south"
    assert m["verdict"] == "reduces" and m["disparity_after"] == pytest.approx(0, abs=1e-9)
    # before: the model's own predictions on the labelled rows (every demo prediction has a score)
    assert m["disparity_before"] == pytest.approx(audit.disparities["equalized_odds_difference"], abs=1e-12)
    south = next(g for g in m["groups"] if g["group"] == "south")
    assert south["fpr_after"] < south["fpr_before"] - 0.1
    # both versions served the A/B period: the points are read on it, the verdict says the change in words
    assert audit.comparison["same_period"] and {p["version"] for p in audit.comparison["versions"]} == {"v1", "v2"}


def test_on_the_demo_store_the_fit_is_within_the_binning_tolerance_of_fairlearn(small_store) -> None:
    """Continuous scores, bins of 0.01: accuracy after within 0.003, mean thresholds within 0.02 (two bins)."""
    audit = audit_store(small_store, ["region"], mitigate="demographic_parity", settings=QUICK)
    with small_store.ibis() as con:  # the reference reads the rows (a test may; the analysis never does)
        rows = q.store_rows(con, None, ["region"], FairnessSettings()).execute()
    rows = rows[rows["label"].notna() & rows["score"].notna()]
    frame = pd.DataFrame({"group": rows["region"], "y": rows["label"].astype(int), "score": rows["score"]})
    pmf, model = fairlearn_pmf(frame, "demographic_parity")
    y = frame["y"].to_numpy()
    m = audit.mitigation
    assert m["n_fit"] == len(frame)
    assert m["accuracy_after"] == pytest.approx(float(np.mean(np.where(y == 1, pmf, 1 - pmf))), abs=0.003)
    rules = model.interpolated_thresholder_.interpolation_dict
    for t in m["thresholds"]:
        theirs = rules[t["group"]]
        expected = theirs.p0 * theirs.operation0.threshold + theirs.p1 * theirs.operation1.threshold
        assert t["p_0"] * t["threshold_0"] + t["p_1"] * t["threshold_1"] == pytest.approx(expected, abs=0.02)


def cli(*args: str):
    """The command in this process (a subprocess costs ~5 s of imports per call on a loaded machine)."""
    return CliRunner().invoke(app, ["fairness", *args])


def test_cli_prints_both_sections_writes_the_thresholds_and_refuses_bad_options(small_store, tmp_path) -> None:
    thresholds = tmp_path / "thresholds.csv"
    db = ["--sensitive", "region", "--db", str(small_store.path)]
    out = cli(*db, "--compare-versions", "--mitigate", "equalized-odds", "--thresholds-csv", str(thresholds),
              "--resamples", "100", "--json")  # fmt: skip
    assert out.exit_code == 0, out.output
    document = json.loads(out.stdout)
    assert document["mitigation"]["verdict"] == "reduces"
    assert {"verdict", "verdict_text", "versions", "front", "champion", "challenger"} <= set(
        document["model_comparison"]
    )
    assert thresholds.read_text().splitlines()[0].startswith("group,threshold_0")
    assert latest_runs(small_store)["fairness"].summary["mitigation"]["constraint"] == "equalized_odds"
    # the thresholds go with the decision: the gate's log keeps the evidence snapshot
    decide(small_store, "defer", "ana", "read the thresholds first", key=b"")
    snapshot = read_decisions(small_store)[-1].evidence["fairness"]["summary"]["mitigation"]
    assert snapshot["thresholds"] == document["mitigation"]["thresholds"]
    text = cli(*db, "--mitigate", "demographic_parity", "--resamples", "50").stdout
    assert "Mitigation preview: reduces: preview of post-processing" in text and "south: score ≥ " in text
    assert "(a preview of a post-processing option, not a retrained model)" in text
    bad = {
        "--mitigate must be demographic_parity or equalized_odds": ["--mitigate", "parity"],
        "--disparity: unknown disparity 'gap'": ["--compare-versions", "--disparity", "gap"],
        "--thresholds-csv needs --mitigate": ["--thresholds-csv", str(thresholds)],
    }
    for message, options in bad.items():  # workbench.cli.main turns an InputError into one line and exit code 2
        error = cli(*db, *options).exception
        assert isinstance(error, InputError) and message in str(error)


def test_row_order_changes_nothing_and_no_resamples_gives_no_verdict(frame_audit) -> None:
    frame, audit = frame_audit
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    again = audit_frame(shuffled, "y", "yhat", ["group"], score="score", model_version="v", compare_versions=True,
                        mitigate="equalized_odds", settings=QUICK)  # fmt: skip
    assert again.mitigation == audit.mitigation and again.comparison == audit.comparison
    bare = audit_frame(frame, "y", "yhat", ["group"], score="score", model_version="v", compare_versions=True,
                       mitigate="demographic_parity", resamples=0)  # fmt: skip
    assert bare.mitigation["verdict"] == "insufficient" and "resamples = 0" in bare.mitigation["verdict_text"]
    assert bare.comparison["verdict"] == "insufficient" and bare.mitigation["thresholds"]


def test_file_mode_previews_the_mitigation_from_the_score_column(tmp_path) -> None:
    path = tmp_path / "scored.csv"
    versioned_rows(n=4000).to_csv(path, index=False)
    out = cli("--file", str(path), "--label", "y", "--prediction", "yhat", "--score", "score", "--sensitive", "group",
              "--version-col", "v", "--compare-versions", "--mitigate", "demographic_parity", "--resamples", "100",
              "--json")  # fmt: skip
    assert out.exit_code == 0, out.output
    document = json.loads(out.stdout)
    after = [g["selection_rate_after"] for g in document["mitigation"]["groups"]]
    assert max(after) - min(after) < 1e-9 and document["mitigation"]["n_fit"] == 4000
    assert [p["version"] for p in document["model_comparison"]["versions"]] == ["v1", "v2"]


def test_on_the_default_demo_the_sharper_challenger_is_better_at_no_fairness_cost(demo) -> None:
    """The demo's challenger scores with half the champion's noise and carries the same bias into south: more
    accurate on the A/B period, with no clear change of equalized odds."""
    store, truth = demo
    audit = audit_store(store, ["region"], compare_versions=True, settings=QUICK)
    c = audit.comparison
    ab = truth["ab_test"]
    assert (c["champion"], c["challenger"]) == (ab["control_model_version"], ab["variant_model_version"])
    assert c["same_period"] and c["verdict"] == "better" and ab["variant_model_version"] in c["front"]
    assert c["change"]["accuracy_ci"][0] > 0 and c["change"]["disparity_ci"][0] < 0 < c["change"]["disparity_ci"][1]


def test_one_version_is_a_point_on_its_own_front_and_no_verdict() -> None:
    frame = versioned_rows(n=2000).assign(v="v1")
    audit = audit_frame(frame, "y", "yhat", ["group"], model_version="v", compare_versions=True, resamples=50)
    c = audit.comparison
    assert [p["version"] for p in c["versions"]] == ["v1"] and c["front"] == ["v1"]
    assert (
        c["verdict"] == "insufficient"
        and c["verdict_text"] == "insufficient: needs two model versions in scope to compare"
    )
