"""Curated retraining sets: exact removals, rebalancing to target, byte-identical exports, no formula injection."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from workbench.core.errors import InputError
from workbench.demo.scenario import Scenario, build_demo
from workbench.gate.curate import CurationSpec, curate, export, oversample_targets, reweighing_weights, robust_z
from workbench.sources.store import Store


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("curate") / "demo.duckdb")
    build_demo(store, Scenario(rows=30_000))
    return store


def sql(store: Store, query: str):
    with store.connect() as con:
        return con.execute(query).fetchall()


def test_conflicts_removed_are_exactly_the_traces_with_both_labels(demo):
    curated = curate(demo, CurationSpec(outlier_z=None, dedupe_features=False))
    (conflicting,) = sql(
        demo, "SELECT count(*) FROM (SELECT trace_id FROM feedback WHERE label IS NOT NULL GROUP BY 1 "
        "HAVING min(label) <> max(label)) JOIN predictions USING (trace_id)"
    )[0]  # fmt: skip
    (labelled,) = sql(
        demo, "SELECT count(DISTINCT trace_id) FROM feedback JOIN predictions USING (trace_id) WHERE label IS NOT NULL"
    )[0]
    assert conflicting > 0
    assert curated.report["conflicting_traces"] == curated.report["conflicts_dropped"] == conflicting
    assert curated.table.num_rows == labelled - conflicting


def test_majority_keeps_conflicts_with_a_clear_majority(demo):
    curated = curate(demo, CurationSpec(conflict_policy="majority", outlier_z=None, dedupe_features=False))
    kept, dropped = curated.report["conflicts_resolved_by_majority"], curated.report["conflicts_dropped"]
    assert kept + dropped == curated.report["conflicting_traces"]


def test_identical_feature_rows_are_removed_and_counted(tmp_path):
    from tests.conftest import write
    from workbench.ingest.pipeline import ingest_file

    store = Store(tmp_path / "s.duckdb")
    write(tmp_path / "p.csv", """
        trace_id,ts,model_version,prediction,score,amount
        a,2026-01-01,v1,1,0.9,5
        b,2026-01-02,v1,1,0.8,5
        c,2026-01-03,v1,0,0.1,7
    """)  # fmt: skip
    write(tmp_path / "f.csv", """
        trace_id,ts,kind,type,value,label
        a,2026-01-04,automated,outcome,1,1
        b,2026-01-04,automated,outcome,1,1
        c,2026-01-04,automated,outcome,0,0
    """)  # fmt: skip
    ingest_file(store, tmp_path / "p.csv")
    ingest_file(store, tmp_path / "f.csv")
    curated = curate(store, CurationSpec(outlier_z=None))
    assert curated.report["identical_feature_rows_removed"] == 1
    assert curated.table.column("trace_id").to_pylist() == ["a", "c"]  # the earliest of the twins stays


def test_outliers_are_excluded_by_the_stated_rule(demo):
    base = curate(demo, CurationSpec(outlier_z=None))
    cut = curate(demo, CurationSpec(outlier_z=5.0))
    removed = cut.report["outliers_removed"]["rows"]
    assert removed > 0 and base.table.num_rows - cut.table.num_rows == removed
    amounts = np.asarray(cut.table.column("amount").to_pylist(), dtype=float)
    all_amounts = np.asarray(base.table.column("amount").to_pylist(), dtype=float)
    median = np.median(all_amounts)
    mad = np.median(np.abs(all_amounts - median))
    assert np.all(np.abs(0.6745 * (amounts - median) / mad) <= 5.0 + 1e-9)


def test_robust_z_matches_a_hand_computation():
    values = np.array([1.0, 2.0, 3.0, 4.0, 100.0])  # median 3, MAD median(|-2,-1,0,1,97|) = 1
    assert robust_z(values) == pytest.approx(0.6745 * (values - 3.0) / 1.0)
    assert np.all(robust_z(np.array([2.0, 2.0, 2.0])) == 0)  # constant column: no outliers, no NaN


def test_oversample_targets_follow_the_formula():
    # q = (0.5, 0.5); N' = max(100/0.5, 20/0.5) = 200; each group topped up to round(0.5 * 200) = 100
    assert oversample_targets({"a": 100, "b": 20}, {"a": 0.5, "b": 0.5}) == {"a": 100, "b": 100}
    # q = (0.6, 0.4); N' = max(30/0.6, 50/0.4) = 125 → a: 75, b: 50
    assert oversample_targets({"a": 30, "b": 50}, {"a": 0.6, "b": 0.4}) == {"a": 75, "b": 50}
    with pytest.raises(InputError, match="has no rows"):
        oversample_targets({"a": 10}, {"a": 0.5, "b": 0.5})


def test_oversampling_reaches_the_target_shares_within_rounding(demo):
    shares = {"north": 0.25, "south": 0.25, "east": 0.25, "west": 0.25}
    spec = CurationSpec(rebalance_attribute="region", rebalance_method="oversample", target_shares=shares, seed=3)
    curated = curate(demo, spec)
    after = curated.report["composition_after"]["region"]
    n = curated.table.num_rows
    for group, share in shares.items():
        assert after[group] == pytest.approx(share, abs=1 / n)
    again = curate(demo, spec)
    assert again.table.equals(curated.table)  # seeded


def test_reweighing_matches_aif360_formula_and_keeps_total_weight():
    groups = np.array(["a", "a", "a", "b", "b", "b", "b", "b"])
    labels = np.array([1, 0, 0, 1, 1, 1, 1, 0])
    w = reweighing_weights(groups, labels)
    # n=8, n_a=3, n_b=5, n_y1=5, n_y0=3; w(a,1)=3*5/(8*1), w(a,0)=3*3/(8*2), w(b,1)=5*5/(8*4), w(b,0)=5*3/(8*1)
    assert w == pytest.approx([15 / 8, 9 / 16, 9 / 16, 25 / 32, 25 / 32, 25 / 32, 25 / 32, 15 / 8])
    assert w.sum() == pytest.approx(8)


def test_two_exports_with_the_same_parameters_are_byte_identical(demo, tmp_path):
    spec = CurationSpec(rebalance_attribute="age_band", rebalance_method="oversample", seed=1)
    first = export(demo, spec, tmp_path / "one")
    second = export(demo, spec, tmp_path / "two")
    one, two = (
        (tmp_path / "one" / "retraining_set.parquet").read_bytes(),
        (tmp_path / "two" / "retraining_set.parquet").read_bytes(),
    )
    assert one == two
    assert first["sha256"] == second["sha256"] == hashlib.sha256(one).hexdigest()
    manifest = json.loads((tmp_path / "one" / "manifest.json").read_text())
    assert manifest["rows"] == pq.read_table(tmp_path / "one" / "retraining_set.parquet").num_rows
    for key in ("columns", "filters", "source", "model_versions", "composition_before", "composition_after",
                "created_at", "created_by"):  # fmt: skip
        assert key in manifest
    assert manifest["filters"]["seed"] == 1 and manifest["source"]["predictions"] == 30_000


def test_csv_export_neutralises_formula_injection(tmp_path):
    from tests.conftest import write
    from workbench.ingest.pipeline import ingest_file

    store = Store(tmp_path / "s.duckdb")
    write(tmp_path / "p.csv", """
        trace_id,ts,model_version,prediction,score,note,amount
        a,2026-01-01,v1,1,0.9,=cmd|' /C calc'!A0,-3.5
        b,2026-01-02,v1,0,0.2,+SUM(1),2
        c,2026-01-03,v1,0,0.2,@x,2
    """)  # fmt: skip
    write(tmp_path / "f.csv", "trace_id,ts,kind,type,value,label\na,2026-01-04,automated,outcome,1,1\n"
          "b,2026-01-04,automated,outcome,0,0\nc,2026-01-04,automated,outcome,0,0\n")  # fmt: skip
    ingest_file(store, tmp_path / "p.csv")
    ingest_file(store, tmp_path / "f.csv")
    export(store, CurationSpec(outlier_z=None), tmp_path / "out", fmt="csv")
    frame = pd.read_csv(tmp_path / "out" / "retraining_set.csv")
    assert list(frame["note"]) == ["'=cmd|' /C calc'!A0", "'+SUM(1)", "'@x"]
    assert list(frame["amount"]) == [-3.5, 2.0, 2.0]  # numbers are numbers, not neutralised text


def test_merge_caps_the_share_of_feedback_derived_rows(demo, tmp_path):
    existing = pd.DataFrame({"amount": np.arange(1000.0), "label": np.zeros(1000, dtype=int)})
    existing.to_parquet(tmp_path / "train.parquet")
    spec = CurationSpec(merge_file=str(tmp_path / "train.parquet"), max_feedback_share=0.2, seed=2)
    curated = curate(demo, spec)
    merge = curated.report["merge"]
    assert merge["training_set_rows"] == 1000 and merge["feedback_rows"] == 250  # 0.2 = 250 / 1250
    assert merge["feedback_share"] == pytest.approx(0.2)


def test_an_empty_selection_is_refused_with_a_message(demo, tmp_path):
    with pytest.raises(InputError, match="the curated set is empty"):
        export(demo, CurationSpec(start="2030-01-01"), tmp_path / "none")


def test_unlabelled_predictions_are_kept_with_an_empty_label_when_asked(demo):
    curated = curate(demo, CurationSpec(labelled_only=False, outlier_z=None, dedupe_features=False))
    (predictions, unlabelled) = sql(
        demo,
        "SELECT count(*), count(*) FILTER (trace_id NOT IN (SELECT trace_id FROM feedback WHERE label IS NOT NULL)) "
        "FROM predictions",
    )[0]
    report = curated.report
    assert curated.table.num_rows == predictions - report["conflicts_dropped"]
    assert report["unlabelled_rows"] == unlabelled == curated.table.column("label").null_count
    assert report["composition_after"]["labelled_rows"] == predictions - unlabelled - report["conflicts_dropped"]
    with pytest.raises(InputError, match="reweighing needs a label on every row"):
        curate(demo, CurationSpec(labelled_only=False, rebalance_attribute="region", rebalance_method="reweigh"))


@pytest.fixture()
def clicks_store(tmp_path) -> Store:
    """Clicks that agree with the outcome label (long dwell), skips that agree half the time, a rare pattern."""
    from workbench.ingest.pipeline import ingest_frames

    traces, feedback = [], []

    def trace(label: int | None, clicked: bool | None, dwell: float | None) -> None:
        tid = f"t{len(traces):03d}"
        traces.append({"trace_id": tid, "ts": "2026-01-01", "model_version": "v1", "prediction": 1, "amount": 1.0})
        if label is not None:
            feedback.append({"trace_id": tid, "kind": "automated", "type": "outcome", "value": label, "label": label})
        if clicked is not None:
            feedback.append({"trace_id": tid, "kind": "implicit", "type": "click", "value": int(clicked)})
        if dwell is not None:
            feedback.append({"trace_id": tid, "kind": "implicit", "type": "dwell", "value": dwell})

    for _ in range(40):
        trace(1, True, 60.0)  # long reads: always a positive outcome → agreement 1.0
    for i in range(40):
        trace(i % 2, False, None)  # skips: half negative → agreement 0.5
    for _ in range(5):
        trace(1, True, 3.0)  # bounces: too few labelled traces to measure → never used
    for _ in range(10):
        trace(None, True, 45.0)  # unlabelled long reads → implicit label 1
    for _ in range(10):
        trace(None, False, None)  # unlabelled skips → confidence 0.5, below 0.8
    for _ in range(5):
        trace(None, True, 2.0)  # unlabelled bounces → unmeasured pattern
    store = Store(tmp_path / "clicks.duckdb")
    fb = pd.DataFrame(feedback).assign(ts="2026-01-02")
    ingest_frames(store, [(pd.DataFrame(traces), "predictions"), (fb, "feedback")])
    return store


def test_implicit_labels_come_only_from_patterns_that_agreed_with_the_ground_truth(clicks_store):
    curated = curate(clicks_store, CurationSpec(implicit_labels=True, min_implicit_confidence=0.8, outlier_z=None,
                                                dedupe_features=False))  # fmt: skip
    patterns = {p["pattern"]: p for p in curated.report["implicit_labels"]["patterns"]}
    assert patterns["clicked, dwell 30–120 s"] == {
        "pattern": "clicked, dwell 30–120 s", "implicit_label": 1, "overlap": 40, "agreement": 1.0
    }  # fmt: skip
    assert patterns["not clicked"]["agreement"] == 0.5 and patterns["not clicked"]["overlap"] == 40
    assert patterns["clicked, dwell < 10 s"]["overlap"] == 5 and patterns["clicked, dwell < 10 s"]["agreement"] is None
    frame = curated.table.to_pandas()
    implicit = frame[frame["label_source"] == "implicit"]
    assert curated.report["implicit_labels"]["rows_labelled"] == len(implicit) == 10
    assert set(implicit["trace_id"]) == {f"t{i:03d}" for i in range(85, 95)} and set(implicit["label"]) == {1}
    assert len(frame) == 85 + 10  # labelled traces, plus the trusted implicit ones; skips and bounces left out
    everything = curate(clicks_store, CurationSpec(implicit_labels=True, min_implicit_confidence=0.0, outlier_z=None,
                                                   dedupe_features=False))  # fmt: skip
    assert everything.report["implicit_labels"]["rows_labelled"] == 20  # skips too, but never the unmeasured bounces
