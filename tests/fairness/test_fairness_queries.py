"""The engine path of the fairness audit: cells from one GROUP BY equal fairlearn on the same rows; one label
per trace; missing values, tiny groups and single-class labels as named groups; file mode; per-day FPR ratios."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    selection_rate,
)

from tests.fairness.test_fairness_stats import FAIRLEARN_METRICS, random_rows
from workbench.core.errors import InputError
from workbench.fairness.audit import audit_file, audit_frame, audit_store
from workbench.fairness.series import fpr_ratio_series
from workbench.sources.store import Store
from workbench.stats.fairness import FairnessSettings

QUICK = FairnessSettings(bootstrap_resamples=100)


@pytest.mark.parametrize("attributes", [2, 3])
def test_engine_cells_give_fairlearns_metric_frame_and_disparities_to_1e12(attributes: int) -> None:
    frame = random_rows(21 + attributes, 6000, attributes)
    columns = [f"s{i}" for i in range(attributes)]
    frame["ts"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(len(frame)) % 20, unit="D")
    audit = audit_frame(frame, "y", "yhat", columns, ts="ts", settings=QUICK)
    sf = frame[columns]
    mf = MetricFrame(metrics=FAIRLEARN_METRICS, y_true=frame["y"], y_pred=frame["yhat"], sensitive_features=sf)
    expected = mf.by_group
    expected.index = [" × ".join(map(str, k)) for k in expected.index]
    assert sorted(g["group"] for g in audit.groups) == sorted(expected.index)
    sizes = sf.astype(str).agg(" × ".join, axis=1).value_counts()
    for row in audit.groups:
        assert isinstance(row["group"], str)
        assert row["n"] == sizes[row["group"]]
        for metric in FAIRLEARN_METRICS:
            assert row[metric] == pytest.approx(expected.loc[row["group"], metric], abs=1e-12), metric
    y, p = frame["y"], frame["yhat"]
    assert audit.disparities["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, p, sensitive_features=sf), abs=1e-12
    )
    assert audit.disparities["demographic_parity_ratio"] == pytest.approx(
        demographic_parity_ratio(y, p, sensitive_features=sf), abs=1e-12
    )
    assert audit.disparities["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, p, sensitive_features=sf), abs=1e-12
    )
    assert audit.disparities["equalized_odds_ratio"] == pytest.approx(
        equalized_odds_ratio(y, p, sensitive_features=sf), abs=1e-12
    )
    # per time chunk the disparities equal fairlearn's on that chunk's rows
    week = audit.over_time["chunks"][1]
    start = pd.Timestamp(week, tz="UTC")
    part = frame[(frame["ts"] >= start) & (frame["ts"] < start + pd.Timedelta(days=7))]
    assert audit.over_time["disparities"]["equalized_odds_difference"][1] == pytest.approx(
        equalized_odds_difference(part["y"], part["yhat"], sensitive_features=part[columns]), abs=1e-12
    )


def test_unlabelled_rows_count_for_the_selection_rate_only() -> None:
    frame = random_rows(8, 3000, 1)
    frame["y"] = frame["y"].astype("float64")
    frame.loc[frame.index % 3 == 0, "y"] = np.nan
    audit = audit_frame(frame, "y", "yhat", ["s0"], settings=QUICK)
    labelled = frame[frame["y"].notna()]
    mf = MetricFrame(metrics=FAIRLEARN_METRICS, y_true=labelled["y"], y_pred=labelled["yhat"],
                     sensitive_features=labelled["s0"])  # fmt: skip
    everyone = MetricFrame(metrics=selection_rate, y_true=np.zeros(len(frame)), y_pred=frame["yhat"],
                           sensitive_features=frame["s0"])  # fmt: skip
    for row in audit.groups:
        assert row["n"] == int((frame["s0"] == row["group"]).sum())
        assert row["selection_rate"] == pytest.approx(everyone.by_group[row["group"]], abs=1e-12)
        for metric in ("accuracy", "tpr", "fpr", "fnr", "precision"):
            assert row[metric] == pytest.approx(mf.by_group.loc[row["group"], metric], abs=1e-12)
    labelled_only = audit_frame(frame, "y", "yhat", ["s0"], settings=FairnessSettings(
        bootstrap_resamples=0, selection_rate_population="labelled"))  # fmt: skip
    for row in labelled_only.groups:
        assert row["selection_rate"] == pytest.approx(mf.by_group.loc[row["group"], "selection_rate"], abs=1e-12)


@pytest.fixture()
def hand_store(tmp_path: Path) -> Store:
    """Four regions by hand: north/south large (south with FPR 0.4 vs 0.1), 'tiny' with 5 rows, a missing
    region, 'onlypos' whose labels are all positive; conflicting labels on three traces; thumbs and ratings."""
    from workbench.ingest.pipeline import ingest_frames

    predictions, feedback = [], []

    def add(region, y, yhat, n, day=0, labels=None, thumb=None, rating=None):
        for _ in range(n):
            tid = f"t{len(predictions):05d}"
            ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=day, hours=len(predictions) % 20)
            predictions.append({"trace_id": tid, "ts": ts, "model_version": "v1", "prediction": yhat,
                                "score": 0.8 if yhat else 0.2, "region": region})  # fmt: skip
            for k, label in enumerate(labels if labels is not None else ([] if y is None else [y])):
                # distinct times: identical feedback rows are one event (ingest drops exact repeats)
                at = ts + pd.Timedelta(seconds=k)
                feedback.append({"trace_id": tid, "ts": at, "kind": "explicit", "type": "correction",
                                 "value": float(label), "label": label})  # fmt: skip
            if thumb is not None:
                feedback.append({"trace_id": tid, "ts": ts, "kind": "explicit", "type": "thumb", "value": float(thumb)})
            if rating is not None:
                feedback.append({"trace_id": tid, "ts": ts, "kind": "explicit", "type": "rating", "value": rating})

    for day in (0, 1):
        add("north", 1, 1, 40, day)
        add("north", 0, 0, 90, day)
        add("north", 0, 1, 10, day)  # FPR 10/100
        add("south", 1, 1, 40, day)
        add("south", 0, 0, 60, day)
        add("south", 0, 1, 40, day)  # FPR 40/100
    add("north", None, 1, 20, thumb=1, rating=4.0)
    add("north", None, 0, 20, thumb=0, rating=2.0)
    add("tiny", 1, 1, 3)
    add("tiny", 0, 0, 2)
    add(None, 1, 1, 35)
    add(None, 0, 0, 35)
    add("onlypos", 1, 1, 40)
    add("north", None, 1, 1, labels=[1, 1, 0])  # majority → 1
    add("north", None, 1, 1, labels=[1, 0])  # tie → dropped (unlabelled), counted
    add("north", None, 0, 1, labels=[0, 0, 1])  # majority → 0
    store = Store(tmp_path / "hand.duckdb")
    ingest_frames(store, [(pd.DataFrame(predictions), "predictions"), (pd.DataFrame(feedback), "feedback")])
    return store


def test_store_audit_counts_one_label_per_trace_and_names_every_group(hand_store: Store) -> None:
    audit = audit_store(hand_store, ["region"], settings=QUICK)
    groups = {g["group"]: g for g in audit.groups}
    assert set(groups) == {"north", "south", "tiny", "onlypos", "(missing)"}
    north = groups["north"]
    assert north["n"] == 280 + 40 + 3
    assert north["n_labelled"] == 280 + 2  # the tie is dropped
    assert north["positives"] == 80 + 1 and north["negatives"] == 200 + 1
    assert north["fpr"] == pytest.approx(20 / 201)
    assert groups["south"]["fpr"] == pytest.approx(80 / 200)
    assert audit.labels["conflicting_traces"] == 3 and audit.labels["conflicts_dropped"] == 1
    assert audit.reference_group == "north"
    assert groups["south"]["status"] == "fail" and audit.verdict == "fail"
    assert groups["tiny"]["status"] == "insufficient data"
    # all of its labels positive: FPR unmeasurable (None, not fairlearn's 0) and not judged; its selection
    # rate (1.0 over 40 predictions, ~2× north's) is judged and fails
    assert groups["onlypos"]["fpr"] is None and not groups["onlypos"]["sufficient"]["fpr"]
    assert groups["onlypos"]["vs_reference"]["fpr"]["status"] == "insufficient data"
    assert groups["onlypos"]["vs_reference"]["selection_rate"]["status"] == "fail"
    assert groups["(missing)"]["missing_value"] and groups["(missing)"]["n"] == 70
    kinds = {(f["kind"], f["group"]) for f in audit.flags}
    assert {("single_class", "onlypos"), ("missing_value", "(missing)"), ("insufficient_data", "tiny")} <= kinds
    assert north["positive_feedback_rate"] == pytest.approx(0.5) and north["thumbs"] == 40
    assert north["mean_rating"] == pytest.approx(3.0)
    # the sentence names every failing group (issue 18); each comparison's numbers are in the reasons
    assert audit.verdict_text.startswith("fail: 2 groups outside ×0.80–1.25 of region=north's rate with significance")
    assert any(r.startswith("FPR for region=south is 0.40 vs 0.10 for region=north (ratio 4.0") for r in audit.reasons)


def test_drop_policy_drops_every_conflicting_trace(hand_store: Store) -> None:
    audit = audit_store(
        hand_store, ["region"], settings=FairnessSettings(bootstrap_resamples=0, conflict_policy="drop")
    )
    assert audit.group("north")["n_labelled"] == 280
    assert audit.labels["conflicts_dropped"] == 3


def test_fpr_ratio_series_per_day_against_the_largest_group(hand_store: Store) -> None:
    series = fpr_ratio_series(hand_store, "region", granularity="day")
    south = series[series["group"] == "south"].reset_index(drop=True)
    assert list(south["chunk"].dt.strftime("%Y-%m-%d")) == ["2026-01-01", "2026-01-02"]
    assert (south["reference_group"] == "north").all()
    assert south.loc[1, "ratio"] == pytest.approx((40 / 100) / (10 / 100))
    assert south.loc[1, "sufficient"]
    tiny = series[series["group"] == "tiny"]
    assert not tiny["sufficient"].any() and tiny["ratio"].isna().all()


def test_file_mode_reads_csv_and_refuses_bad_columns(tmp_path: Path) -> None:
    frame = random_rows(3, 2000, 2)
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    audit = audit_file(path, "y", "yhat", ["s0", "s1"], settings=QUICK)
    assert len(audit.groups) == 6 and all(" × " in g["group"] for g in audit.groups)
    with pytest.raises(InputError, match="no column 'nope'"):
        audit_file(path, "nope", "yhat", ["s0"], settings=QUICK)
    frame.assign(y=frame["y"].astype(str).replace("1", "maybe")).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"not 0 or 1, e\.g\. 'maybe'"):
        audit_file(path, "y", "yhat", ["s0"], settings=QUICK)
    with pytest.raises(InputError, match="no such file"):
        audit_file(tmp_path / "absent.csv", "y", "yhat", ["s0"], settings=QUICK)


def test_missing_blank_and_absent_values_are_named_groups_never_dropped() -> None:
    frame = random_rows(4, 900, 1)
    frame["s0"] = frame["s0"].astype(object)
    frame.loc[frame.index % 9 == 0, "s0"] = None
    frame.loc[frame.index % 9 == 1, "s0"] = "  "
    audit = audit_frame(frame, "y", "yhat", ["s0"], settings=QUICK, population={"a": 0.4, "b": 0.4, "c": 0.2})
    groups = {g["group"]: g for g in audit.groups}
    assert set(groups) == {"a", "b", "c", "(missing)", "(blank)"}
    assert groups["(missing)"]["n"] == 100 and groups["(blank)"]["n"] == 100
    assert groups["c"]["n"] == 0 and groups["c"]["status"] == "insufficient data"  # in the population, not the data
    assert sum(g["n"] for g in audit.groups) == 900


def test_an_attribute_missing_everywhere_is_one_named_group_and_no_verdict() -> None:
    frame = pd.DataFrame({"g": [None] * 100, "y": np.arange(100) % 2, "p": (np.arange(100) // 2) % 2})
    audit = audit_frame(frame, "y", "p", ["g"], settings=QUICK)
    assert [g["group"] for g in audit.groups] == ["(missing)"] and audit.groups[0]["n"] == 100
    assert audit.verdict == "insufficient"
    assert "no group besides the reference" in audit.verdict_text


def test_a_store_without_thumbs_or_ratings_audits_labels_alone(tmp_path: Path) -> None:
    from workbench.ingest.pipeline import ingest_frames

    frame = random_rows(6, 600, 1)
    ts = pd.Timestamp("2026-01-01", tz="UTC")
    predictions = pd.DataFrame({"trace_id": [f"t{i}" for i in range(600)], "ts": ts, "model_version": "v1",
                                "prediction": frame["yhat"], "region": frame["s0"]})  # fmt: skip
    labelled = frame.index % 2 == 0
    feedback = pd.DataFrame({"trace_id": predictions["trace_id"][labelled], "ts": ts, "kind": "automated",
                             "type": "outcome", "value": frame["y"][labelled].astype(float),
                             "label": frame["y"][labelled]})  # fmt: skip
    store = Store(tmp_path / "labels.duckdb")
    ingest_frames(store, [(predictions, "predictions"), (feedback, "feedback")])
    audit = audit_store(store, ["region"], settings=QUICK)
    part = frame[labelled]
    for row in audit.groups:
        mine = part[part["s0"] == row["group"]]
        assert row["n"] == int((frame["s0"] == row["group"]).sum()) and row["n_labelled"] == len(mine)
        expected = ((mine["y"] == 0) & (mine["yhat"] == 1)).sum() / (mine["y"] == 0).sum()
        assert row["fpr"] == pytest.approx(expected, abs=1e-12)
        assert row["positive_feedback_rate"] is None and row["mean_rating"] is None
