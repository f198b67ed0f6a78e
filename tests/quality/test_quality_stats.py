"""Model quality from binned counts against scikit-learn on the rows, CBPE and its sampling errors against
NannyML's published formulas computed by hand, and properties (bounds, row-order invariance); the calibration
folds' portable hash against hashlib's MD5."""

from __future__ import annotations

import hashlib
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from workbench.drift.queries import hashed_sample
from workbench.quality.analyse import RELIABILITY_BINS, components, estimates, summarise
from workbench.sources.hashing import FOLD_HASH_DIGITS, HASH_RANGE, portable_hash, with_fold, with_hash
from workbench.sources.scores import CALIBRATION_FOLDS, binned_scores
from workbench.sources.trace_feedback import TraceLabels
from workbench.stats.performance import Confusion, binned_curves, expected_confusion, sampling_components

RNG = np.random.default_rng(20)


def _rows(n: int = 6000, seed: int = 3) -> pd.DataFrame:
    """Scored predictions with a label on about 70% of them (the rest unlabelled, as in a live stream)."""
    rng = np.random.default_rng(seed)
    score = rng.beta(2, 2, n)
    label = (rng.random(n) < score**1.5).astype(float)
    label[rng.random(n) < 0.3] = np.nan
    return pd.DataFrame(
        {
            "trace_id": [f"t{i}" for i in range(n)],
            "score": score,
            "prediction": (score >= 0.5) * 1,
            "label": label,
            "ts": pd.Timestamp("2026-01-01", tz="UTC"),
            "model_version": "v1",
        }
    )


def _binned(rows: pd.DataFrame) -> pd.DataFrame:
    """The engine's binned counts of ``rows`` (DuckDB through Ibis, the query the report uses)."""
    con = ibis.duckdb.connect()
    table = con.create_table("predictions", rows.drop(columns="label"))
    labels = con.create_table("labels", rows.loc[rows["label"].notna(), ["trace_id", "label"]].astype({"label": int}))
    return binned_scores(table, TraceLabels(labels))


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return _rows()


@pytest.fixture(scope="module")
def report(rows) -> dict:
    return summarise(_binned(rows), None, 100, 0.95, 30)


def _labelled(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["label"].notna()]


def test_confusion_matrix_and_rates_equal_sklearn_on_the_labelled_rows(rows, report):
    lab = _labelled(rows)
    y, p = lab["label"].astype(int), lab["prediction"]
    tn, fp, fn, tp = confusion_matrix(y, p).ravel()
    assert report["confusion"] == {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
    precision, recall, f1, _ = precision_recall_fscore_support(y, p, average="binary")
    m = report["metrics"]
    assert m["accuracy"] == pytest.approx((tp + tn) / len(lab), abs=1e-12)
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((precision, recall, f1), abs=1e-12)
    assert report["labelled"] == len(lab) and report["rows"] == len(rows)


def test_areas_are_within_their_stated_binning_bounds_of_sklearn(rows, report):
    lab = _labelled(rows)
    y, s = lab["label"].astype(int), lab["score"]
    m, bound = report["metrics"], report["binning_error"]
    assert abs(m["roc_auc"] - roc_auc_score(y, s)) <= bound["roc_auc"] + 1e-12
    assert abs(m["pr_auc"] - average_precision_score(y, s)) <= bound["pr_auc"] + 1e-12
    assert bound["roc_auc"] < 0.002 and bound["pr_auc"] < 0.01  # 1/1000 bins: the bounds are small


def test_binned_areas_equal_sklearn_when_each_bin_holds_one_score():
    scores = RNG.integers(0, 40, 3000)
    labels = (RNG.random(3000) < scores / 45).astype(int)
    curves = binned_curves(
        np.bincount(scores[labels == 1], minlength=40), np.bincount(scores[labels == 0], minlength=40)
    )
    assert curves.roc_auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert curves.pr_auc == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


def test_brier_and_reliability_diagram_equal_sklearn(rows, report):
    lab = _labelled(rows)
    y, s = lab["label"].astype(int), lab["score"]
    assert report["metrics"]["brier"] == pytest.approx(brier_score_loss(y, s), abs=1e-12)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=RELIABILITY_BINS)
    r = report["reliability"]
    np.testing.assert_allclose(r["positive_rate"], prob_true, atol=1e-12)
    np.testing.assert_allclose(r["mean_score"], prob_pred, atol=1e-12)
    ece = sum(n * abs(a - b) for n, a, b in zip(r["labelled"], prob_pred, prob_true, strict=True)) / len(lab)
    assert report["metrics"]["ece"] == pytest.approx(ece, abs=1e-12)
    assert np.all(r["lower"] <= r["positive_rate"]) and np.all(r["positive_rate"] <= r["upper"])


def test_wilson_intervals_of_the_diagram_equal_statsmodels(report):
    from statsmodels.stats.proportion import proportion_confint

    r = report["reliability"]
    low, high = proportion_confint(np.round(r["positive_rate"] * r["labelled"]), r["labelled"], method="wilson")
    np.testing.assert_allclose(r["lower"], low, atol=1e-9)
    np.testing.assert_allclose(r["upper"], high, atol=1e-9)


def test_cbpe_expected_confusion_matrix_by_hand_with_nannymls_formulas():
    # NannyML: TP = Σ_{ŷ=1} p, FP = Σ_{ŷ=1} (1 − p), FN = Σ_{ŷ=0} p, TN = Σ_{ŷ=0} (1 − p); precision = TP/(TP + FP),
    # recall = TP/(TP + FN), F1 = 2TP/(2TP + FP + FN)
    p = np.array([0.9, 0.8, 0.6, 0.3, 0.2, 0.1])
    y_pred = np.array([1, 1, 1, 0, 0, 0])
    c = expected_confusion(y_pred * 1.0, 1.0 - y_pred, p)
    tp, fp, fn, tn = 2.3, 0.7, 0.6, 2.4
    assert (c.tp, c.fp, c.fn, c.tn) == pytest.approx((tp, fp, fn, tn), abs=1e-12)
    rates = c.rates()
    assert rates["precision"] == pytest.approx(tp / 3.0, abs=1e-12)
    assert rates["recall"] == pytest.approx(tp / 2.9, abs=1e-12)
    assert rates["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)
    assert rates["accuracy"] == pytest.approx(4.7 / 6, abs=1e-12)


def test_cbpe_estimated_roc_auc_is_the_auc_of_the_expected_labels():
    # NannyML's estimate_roc_auc: the ROC curve whose TPR/FPR at each threshold are the shares of Σp and Σ(1 − p)
    # above it; with a distinct score per bin that is the trapezoid area under those points
    p = np.array([0.05, 0.2, 0.35, 0.5, 0.7, 0.9])
    part = pd.DataFrame({"bin": (p * 1000).astype(int), "prediction": (p >= 0.5) * 1, "n": 1.0, "s": p})
    est = estimates(part, None, 100)
    order = np.argsort(-p)
    tpr = np.concatenate([[0], np.cumsum(p[order]) / p.sum()])
    fpr = np.concatenate([[0], np.cumsum(1 - p[order]) / (1 - p).sum()])
    assert est["roc_auc"] == pytest.approx(np.trapezoid(tpr, fpr), abs=1e-12)


def _nannyml_std(values: np.ndarray) -> float:
    return float(np.std(values))


def test_sampling_errors_equal_nannymls_components_by_hand():
    y = np.array([1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0])
    pred = np.array([1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0])
    tp = ((y == 1) & (pred == 1)).sum()
    fp = ((y == 0) & (pred == 1)).sum()
    fn = ((y == 1) & (pred == 0)).sum()
    tn = ((y == 0) & (pred == 0)).sum()
    scores = np.linspace(0.05, 0.95, 12)  # one distinct score per bin, the lowest a negative (no rank-0 positive)
    bins = (scores * 1000).astype(int)
    sc = sampling_components(
        Confusion(tp, fp, fn, tn), np.bincount(bins[y == 1], minlength=1000), np.bincount(bins[y == 0], minlength=1000)
    )
    n = 400
    # accuracy: std of the correct indicator / √n
    assert sc.standard_error("accuracy", n) == pytest.approx(_nannyml_std((y == pred) * 1.0) / np.sqrt(n))
    # precision: std over predicted positives (TP → 1, FP → 0) / √(n · share of positive predictions)
    obs = np.concatenate([np.ones(tp), np.zeros(fp)])
    assert sc.standard_error("precision", n) == pytest.approx(_nannyml_std(obs) / np.sqrt(n * pred.mean()))
    # recall: std over actual positives / √(n · share of positives)
    obs = np.concatenate([np.ones(tp), np.zeros(fn)])
    assert sc.standard_error("recall", n) == pytest.approx(_nannyml_std(obs) / np.sqrt(n * y.mean()))
    # F1: TP → 1, FN and FP → 0, scaled by (TP + FN + FP)/((FN + FP)/2 + TP); share (TP + FN + FP)/n
    obs = np.concatenate([np.ones(tp), np.zeros(fn + fp)])
    factor = (tp + fn + fp) / ((fn + fp) * 0.5 + tp)
    share = (tp + fn + fp) / len(y)
    assert sc.standard_error("f1", n) == pytest.approx(_nannyml_std(obs * factor) / np.sqrt(n * share))
    # ROC AUC: per positive (the minority here: 6 of 12, no flip), the share of negatives ranked below it
    order = np.argsort(scores)
    ys = y[order]
    below = np.array([(ys[:i] == 0).sum() for i in range(len(ys)) if ys[i] == 1]) / (ys == 0).sum()
    assert sc.standard_error("roc_auc", n) == pytest.approx(_nannyml_std(below) / np.sqrt(n * y.mean()))


def test_a_metric_without_its_class_is_nan_not_an_error():
    rates = Confusion(0, 0, 5, 5).rates()
    assert np.isnan(rates["precision"]) and rates["recall"] == 0 and rates["accuracy"] == 0.5
    curves = binned_curves(np.zeros(10), np.ones(10))
    assert np.isnan(curves.roc_auc) and np.isnan(curves.pr_auc)


def test_too_few_labels_leave_the_metrics_unread(rows):
    few = rows.copy()
    few.loc[few.index[40:], "label"] = np.nan
    summary = summarise(_binned(few), None, 100, 0.95, 100)
    assert summary["labelled"] <= 40
    assert all(np.isnan(v) for v in summary["metrics"].values())
    assert np.isfinite(summary["estimated"]["f1"])  # the estimate needs no labels


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 999), st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=300))
def test_metrics_are_in_0_1_and_do_not_depend_on_row_order(cells):
    frame = pd.DataFrame(cells, columns=["bin", "prediction", "label"])

    def binned(f: pd.DataFrame) -> pd.DataFrame:
        f = f.assign(n=1.0, s=(f["bin"] + 0.5) / 1000, labelled=1.0, positives=f["label"] * 1.0)
        f = f.assign(s_labelled=f["s"], s2_labelled=f["s"] ** 2, s_positive=f["s"] * f["label"])
        return f.groupby(["bin", "prediction"], as_index=False).sum(numeric_only=True)

    one = summarise(binned(frame), None, 100, 0.95, 1)
    other = summarise(binned(frame.sample(frac=1.0, random_state=1)), None, 100, 0.95, 1)
    for name, value in one["metrics"].items():
        assert np.isnan(value) or 0 <= value <= 1, name
        assert value == pytest.approx(other["metrics"][name], nan_ok=True, abs=1e-12), name
    for name, value in one["estimated"].items():
        if name != "confusion":
            assert np.isnan(value) or -1e-12 <= value <= 1 + 1e-12, name
    assert components(binned(frame)).standard_error("accuracy", 100) >= 0


@pytest.fixture(scope="module")
def duckdb_engine() -> Any:
    """One in-memory DuckDB backend for the hash's examples (a connection each would cost most of their time)."""
    return ibis.duckdb.connect()


def _md5_hash(text: str, digits: int = 8) -> int:
    """The portable hash by hand: MD5's first hex digits as an integer (RFC 1321, through hashlib)."""
    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:digits], 16)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.text(st.characters(codec="utf-8", blacklist_characters="\x00"), max_size=40), min_size=1, max_size=50),
    st.integers(1, 8),
)
def test_the_portable_hash_is_md5_s_first_hex_digits(duckdb_engine, texts, digits):
    con = duckdb_engine
    table = ibis.memtable(pd.DataFrame({"trace_id": texts, "position": range(len(texts))}))
    got = con.execute(table.select("position", h=portable_hash(table.trace_id, digits)).order_by("position"))["h"]
    assert got.tolist() == [_md5_hash(t, digits) for t in texts]
    assert ((got >= 0) & (got < 16**digits)).all()
    assert con.execute(table.select(h=portable_hash(table.trace_id)))["h"].max() < HASH_RANGE == 2**32


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=30), st.integers(1, 8))
def test_a_table_s_hash_is_the_same_number_with_md5_computed_once(duckdb_engine, texts, digits):
    """with_hash/with_fold give portable_hash's numbers; their Spark SQL holds one MD5 (Spark inlines a repeated
    expression: portable_hash as one expression ran MD5 three times a digit there)."""
    from ibis.backends.pyspark import Backend

    table = ibis.memtable(pd.DataFrame({"trace_id": texts, "position": range(len(texts))}))
    hashed = with_hash(table, table.trace_id, "h", digits)
    got = duckdb_engine.execute(hashed.order_by("position"))
    assert got["h"].tolist() == [_md5_hash(t, digits) for t in texts] and list(got.columns) == [
        "trace_id",
        "position",
        "h",
    ]
    folds = duckdb_engine.execute(with_fold(table, "fold").order_by("position"))["fold"]
    assert folds.tolist() == [_md5_hash(t, FOLD_HASH_DIGITS) % 10 for t in texts]
    # the hashes the workbench reads on Spark: the seeded sample's 8 digits and the folds' 4 (Ibis keeps the digest's
    # projection where inlining it would cost more by its own measure, as here; with 1 digit it inlines)
    Backend.register_options()
    schema = ibis.table({"trace_id": "string", "x": "float64"}, name="t")
    sample = hashed_sample(schema, ["x"], 0.01, 7)
    assert ibis.to_sql(sample, dialect="pyspark").count("MD5(") == 1
    assert ibis.to_sql(with_fold(schema, "f"), dialect="pyspark").count("MD5(") == 1
    one_expression = ibis.to_sql(schema.select(h=portable_hash(schema.trace_id)), dialect="pyspark")
    assert one_expression.count("MD5(") == 4 * 8  # each digit reads the digest four times in Spark's SQL


def test_an_integer_key_is_hashed_as_its_text():
    table = ibis.memtable(pd.DataFrame({"key": [0, 7, -12, 2**40]}))
    got = ibis.duckdb.connect().execute(table.select(h=portable_hash(table.key)))["h"]
    assert sorted(got) == sorted(_md5_hash(str(k)) for k in (0, 7, -12, 2**40))


def test_each_trace_s_fold_is_its_md5_mod_10_whatever_the_row_order(rows):
    """The fold counts the engine returns equal those of the folds computed by hand, and a shuffled table (other
    rows first, other parallel chunks) gives the same counts and sums per (bin, prediction, fold)."""
    con = ibis.duckdb.connect()
    labels = TraceLabels(
        con.create_table("labels", rows.loc[rows["label"].notna(), ["trace_id", "label"]].astype({"label": int}))
    )
    ordered, shuffled = (
        binned_scores(con.create_table(name, part.drop(columns="label")), labels, folds=True)
        .sort_values(["bin", "prediction", "fold"])
        .reset_index(drop=True)
        for name, part in (("ordered", rows), ("shuffled", rows.sample(frac=1.0, random_state=5)))
    )
    by_hand = rows["trace_id"].map(lambda t: _md5_hash(t, FOLD_HASH_DIGITS)) % CALIBRATION_FOLDS
    assert ordered.groupby("fold")["n"].sum().to_dict() == by_hand.value_counts().to_dict()
    labelled_by_hand = by_hand[rows["label"].notna()].value_counts()
    assert ordered.groupby("fold")["labelled"].sum().to_dict() == labelled_by_hand.astype(float).to_dict()
    assert ordered[["bin", "prediction", "fold", "n", "labelled", "positives"]].equals(
        shuffled[["bin", "prediction", "fold", "n", "labelled", "positives"]]
    )
    pd.testing.assert_frame_equal(ordered, shuffled, check_exact=False, rtol=1e-12)
