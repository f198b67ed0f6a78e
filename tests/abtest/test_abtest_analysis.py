"""The A/B analysis end to end: files, typed-in summaries and the store, against scipy/statsmodels and the demo."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from tests.helpers.demo_stores import copy_demo
from workbench.abtest.analyse import analyse_file, analyse_store, analyse_summary, export, parse_summary_file
from workbench.abtest.request import ABTestRequest
from workbench.abtest.result import ABTestSettings
from workbench.core.errors import InputError
from workbench.sources.store import Store


def _walk_numbers(value: object) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _walk_numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _walk_numbers(v)]
    return [value] if isinstance(value, float) else []


def assert_json_clean(result: object) -> dict:
    """The result's JSON document parses strictly (no NaN/inf) and has the contract keys."""
    doc = json.loads(export(result, "json"), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert all(math.isfinite(x) for x in _walk_numbers(doc))
    for arm in doc["arms"]:
        assert {"arm", "n", "mean"} <= set(arm)
    assert len({a["arm"] for a in doc["arms"]}) == len(doc["arms"])  # one row per arm: the first primary metric
    assert {"p_value", "ok"} <= set(doc["srm"])
    keys = {"variant", "control", "diff", "diff_ci", "rel_lift", "rel_lift_ci", "p_value", "p_adjusted",
            "significant", "prob_beat_control"}  # fmt: skip
    for c in doc["comparisons"]:
        assert keys <= set(c)
    assert isinstance(doc["verdict"], str) and doc["verdict"].endswith(".")
    return doc


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(2026)


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "units.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_file_proportion_matches_statsmodels_pooled_z(tmp_path: Path, rng: np.random.Generator) -> None:
    a, b = rng.random(4000) < 0.30, rng.random(4100) < 0.33
    frame = pd.DataFrame({"arm": ["control"] * 4000 + ["treatment"] * 4100, "converted": np.r_[a, b].astype(int)})
    result = analyse_file(_csv(tmp_path, frame), ABTestRequest(mode="file", arm_col="arm", metric_col="converted"))
    c = result.comparisons[0]
    _z, p = proportions_ztest([b.sum(), a.sum()], [4100, 4000])
    assert c.kind == "proportion" and c.control == "control"
    assert c.p_value == pytest.approx(p, abs=1e-9)
    assert c.diff == pytest.approx(b.mean() - a.mean(), abs=1e-12)
    se = math.sqrt(a.mean() * (1 - a.mean()) / 4000 + b.mean() * (1 - b.mean()) / 4100)
    if c.ci_method == "wald-unpooled":
        z = stats.norm.ppf(0.975)
        assert c.diff_ci == pytest.approx((c.diff - z * se, c.diff + z * se), abs=1e-9)
    assert (c.diff_ci[0] > 0 or c.diff_ci[1] < 0) == c.significant
    pa, pb = a.mean(), b.mean()
    rel_se = math.sqrt(pb * (1 - pb) / 4100 / pa**2 + pb**2 * pa * (1 - pa) / 4000 / pa**4)  # delta method
    assert c.rel_lift == pytest.approx(pb / pa - 1, abs=1e-12)
    if "relative lift from" not in c.ci_method:
        z = stats.norm.ppf(0.975)
        assert c.rel_lift_ci == pytest.approx((c.rel_lift - z * rel_se, c.rel_lift + z * rel_se), abs=1e-9)
    assert_json_clean(result)


def test_file_mean_matches_scipy_welch_ci_and_mann_whitney(tmp_path: Path, rng: np.random.Generator) -> None:
    a, b = rng.lognormal(3.0, 0.8, 3000), rng.lognormal(3.05, 0.9, 2500)
    frame = pd.DataFrame({"arm": ["A"] * 3000 + ["B"] * 2500, "dwell": np.r_[a, b]})
    result = analyse_file(
        _csv(tmp_path, frame), ABTestRequest(mode="file", arm_col="arm", metric_col="dwell", kind="mean", control="A")
    )
    c = result.comparisons[0]
    welch = stats.ttest_ind(b, a, equal_var=False)
    assert c.p_value == pytest.approx(welch.pvalue, abs=1e-9)
    lo, hi = welch.confidence_interval(0.95)
    assert c.diff_ci == pytest.approx((lo, hi), abs=1e-9)
    mw = stats.mannwhitneyu(b, a, method="asymptotic")
    assert c.mann_whitney_p == pytest.approx(mw.pvalue, abs=1e-9)
    cap = np.quantile(np.r_[a, b], 0.99)
    capped = stats.ttest_ind(np.minimum(b, cap), np.minimum(a, cap), equal_var=False)
    assert c.capped["cap"] == pytest.approx(cap, rel=1e-9)
    assert c.capped["p_value"] == pytest.approx(capped.pvalue, abs=1e-9)
    assert_json_clean(result)


def test_capping_over_nonzero_values_only_keeps_a_sparse_metric_alive(tmp_path: Path, rng: np.random.Generator) -> None:
    revenue = np.where(rng.random(6000) < 0.03, rng.lognormal(4, 1, 6000), 0.0)
    frame = pd.DataFrame({"arm": np.repeat(["A", "B"], 3000), "revenue": revenue})
    path = _csv(tmp_path, frame)
    everything = analyse_file(
        path,
        ABTestRequest(
            mode="file",
            arm_col="arm",
            metric_col="revenue",
            kind="mean",
            settings=ABTestSettings(capping_percentile=0.95),
        ),
    )
    nonzero = analyse_file(path, ABTestRequest(mode="file", arm_col="arm", metric_col="revenue", kind="mean",
                           settings=ABTestSettings(capping_percentile=0.95, capping_nonzero_only=True)))  # fmt: skip
    assert everything.comparisons[0].capped["cap"] == 0.0  # 97% zeros: the 95th percentile of all values is 0
    assert nonzero.comparisons[0].capped["cap"] == pytest.approx(np.quantile(revenue[revenue != 0], 0.95), rel=1e-9)


def test_file_ratio_uses_the_delta_method(tmp_path: Path, rng: np.random.Generator) -> None:
    sessions = rng.integers(1, 8, 4000)
    clicks = rng.binomial(sessions, np.where(np.arange(4000) < 2000, 0.30, 0.34))
    arm = np.where(np.arange(4000) < 2000, "control", "variant")
    frame = pd.DataFrame({"arm": arm, "clicks": clicks, "sessions": sessions})
    c = analyse_file(
        _csv(tmp_path, frame),
        ABTestRequest(mode="file", arm_col="arm", metric_col="clicks", kind="ratio", denominator_col="sessions"),
    ).comparisons[0]

    def ratio_and_var(y: np.ndarray, n: np.ndarray) -> tuple[float, float]:
        r = y.sum() / n.sum()
        k = len(y)
        var = (np.var(y, ddof=1) - 2 * r * np.cov(y, n)[0, 1] + r * r * np.var(n, ddof=1)) / (k * n.mean() ** 2)
        return r, var

    ra, va = ratio_and_var(clicks[:2000], sessions[:2000])
    rb, vb = ratio_and_var(clicks[2000:], sessions[2000:])
    z = (rb - ra) / math.sqrt(va + vb)
    assert c.diff == pytest.approx(rb - ra, abs=1e-12)
    assert c.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), abs=1e-9)


def test_file_cuped_variance_reduction_matches_a_hand_computation(tmp_path: Path, rng: np.random.Generator) -> None:
    pre = rng.normal(10, 3, 5000)
    post = 0.8 * pre + rng.normal(0, 1.5, 5000) + np.where(np.arange(5000) >= 2500, 0.2, 0.0)
    arm = np.where(np.arange(5000) >= 2500, "variant", "control")
    frame = pd.DataFrame({"arm": arm, "y": post, "x": pre})
    c = analyse_file(
        _csv(tmp_path, frame), ABTestRequest(mode="file", arm_col="arm", metric_col="y", kind="mean", pre_col="x")
    ).comparisons[0]
    theta = np.cov(post, pre, ddof=1)[0, 1] / np.var(pre, ddof=1)
    adjusted = post - theta * pre
    a, b = adjusted[:2500], adjusted[2500:]
    se_cuped = math.sqrt(np.var(a, ddof=1) / 2500 + np.var(b, ddof=1) / 2500)
    se_plain = math.sqrt(np.var(post[:2500], ddof=1) / 2500 + np.var(post[2500:], ddof=1) / 2500)
    assert c.cuped["theta"] == pytest.approx(theta, rel=1e-9)
    assert c.cuped["variance_reduction"] == pytest.approx(1 - se_cuped**2 / se_plain**2, rel=1e-9)
    assert c.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue, abs=1e-9)
    assert c.cuped["variance_reduction"] > 0.5


def test_srm_is_flagged_on_a_508_492_split_of_200k_units_and_not_on_a_fair_one() -> None:
    skewed = analyse_summary([{"arm": "control", "n": "101600", "successes": "30480"},
                              {"arm": "variant", "n": "98400", "successes": "30504"}])  # fmt: skip
    assert not skewed.srm.ok and skewed.srm.p_value < 0.001
    assert skewed.srm.p_value == pytest.approx(stats.chisquare([101600, 98400]).pvalue, rel=1e-9)
    assert skewed.verdict == "srm_fail" and "untrustworthy" in skewed.verdict_text
    assert skewed.evidence()["srm"] == {"p_value": skewed.srm.p_value, "ok": False}
    fair = analyse_summary([{"arm": "control", "n": "100050", "successes": "30000"},
                            {"arm": "variant", "n": "99950", "successes": "30900"}])  # fmt: skip
    assert fair.srm.ok and fair.verdict != "srm_fail"


def test_planned_split_changes_the_srm_expectation() -> None:
    rows = [
        {"arm": "control", "n": "90000", "successes": "9000"},
        {"arm": "variant", "n": "10000", "successes": "1000"},
    ]
    assert not analyse_summary(rows).srm.ok
    assert analyse_summary(rows, ABTestRequest(mode="summary", planned_split={"control": 0.9, "variant": 0.1})).srm.ok


def test_an_arm_with_zero_units_is_an_srm_not_a_crash() -> None:
    result = analyse_summary([{"arm": "control", "n": "5000", "successes": "500"},
                              {"arm": "variant", "n": "0", "successes": "0"}])  # fmt: skip
    assert result.verdict == "srm_fail"
    assert_json_clean(result)


@pytest.mark.parametrize(
    ("rows", "word"),
    [
        (
            [{"arm": "a", "n": "1", "mean": "3", "std": "0"}, {"arm": "b", "n": "1", "mean": "4", "std": "0"}],
            "insufficient",
        ),
        ([{"arm": "a", "n": "500", "mean": "3", "std": "0"}, {"arm": "b", "n": "500", "mean": "3", "std": "0"}], None),
        ([{"arm": "a", "n": "500", "successes": "0"}, {"arm": "b", "n": "500", "successes": "0"}], None),
        ([{"arm": "a", "n": "500", "successes": "500"}, {"arm": "b", "n": "500", "successes": "500"}], None),
    ],
)
def test_degenerate_inputs_give_a_message_and_no_nan(rows: list[dict], word: str | None) -> None:
    result = analyse_summary(rows)
    doc = assert_json_clean(result)
    if word:
        assert result.verdict == word
    assert doc["verdict"]
    c = result.comparisons[0]
    if c.p_value is None:
        assert result.verdict == "insufficient" and c.message


def test_holm_adjusted_intervals_never_contradict_significance() -> None:
    rows = [{"arm": "control", "n": "20000", "successes": "6000"}]
    rows += [{"arm": f"v{i}", "n": "20000", "successes": str(6000 + d)} for i, d in enumerate((120, 180, 240, 300, 10))]
    for adjustment in ("holm", "bh"):
        result = analyse_summary(rows, ABTestRequest(mode="summary", settings=ABTestSettings(adjustment=adjustment)))
        p = [c.p_value for c in result.comparisons]
        from workbench.stats.multiple import adjust_pvalues

        assert [c.p_adjusted for c in result.comparisons] == pytest.approx(list(adjust_pvalues(p, adjustment)))
        for c in result.comparisons:
            excludes = c.diff_ci[0] > 0 or c.diff_ci[1] < 0
            assert excludes == c.significant == (c.p_adjusted <= 0.05)
            rel_excludes = c.rel_lift_ci[0] > 0 or c.rel_lift_ci[1] < 0
            assert rel_excludes == c.significant


def test_summary_file_parses_csv_and_rejects_bad_rows(tmp_path: Path) -> None:
    good = tmp_path / "s.csv"
    good.write_text("arm,n,mean,std\ncontrol,1000,5.0,2.0\nvariant,1000,5.3,2.1\n")
    c = analyse_summary(parse_summary_file(good)).comparisons[0]
    ref = stats.ttest_ind_from_stats(5.3, 2.1, 1000, 5.0, 2.0, 1000, equal_var=False)
    assert c.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    bad = tmp_path / "bad.csv"
    bad.write_text("arm,n,successes\ncontrol,100,120\nvariant,100,10\n")
    with pytest.raises(InputError, match="exceed"):
        analyse_summary(parse_summary_file(bad))
    with pytest.raises(InputError, match="no such file"):
        analyse_file(tmp_path / "missing.csv", ABTestRequest(mode="file", arm_col="arm", metric_col="x"))
    with pytest.raises(InputError, match="no column"):
        analyse_file(good, ABTestRequest(mode="file", arm_col="group", metric_col="mean"))


def test_a_nan_is_missing_and_an_infinite_value_is_refused(tmp_path: Path, rng: np.random.Generator) -> None:
    """NaN (pandas' missing float, kept as NaN in Parquet) leaves its row out like a null; ±inf in the metric, the
    denominator or the pre-period column is a one-line error, never an infinite mean and a verdict on it."""
    frame = pd.DataFrame({"arm": rng.choice(["A", "B"], 2000), "y": rng.normal(1.0, 1.0, 2000),
                          "x": rng.normal(0.0, 1.0, 2000)})  # fmt: skip
    frame.loc[:9, "y"] = np.nan
    path = tmp_path / "units.parquet"
    frame.to_parquet(path)
    c = analyse_file(
        path, ABTestRequest(mode="file", arm_col="arm", metric_col="y", kind="mean", control="A")
    ).comparisons[0]
    kept = frame.dropna()
    expected = stats.ttest_ind(kept.loc[kept.arm == "B", "y"], kept.loc[kept.arm == "A", "y"], equal_var=False)
    assert c.p_value == pytest.approx(expected.pvalue, abs=1e-9)
    for column in ("y", "x"):
        bad = frame.copy()
        bad.loc[20:22, column] = [np.inf, -np.inf, np.inf]
        bad.to_parquet(tmp_path / "bad.parquet")
        with pytest.raises(InputError, match=f"column '{column}' has 3 infinite value"):
            analyse_file(
                tmp_path / "bad.parquet",
                ABTestRequest(mode="file", arm_col="arm", metric_col="y", kind="mean", pre_col="x"),
            )


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    from workbench.demo.scenario import Scenario

    target = tmp_path_factory.mktemp("ab") / "small.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=20_000, days=30), target)[0]


def test_store_aggregates_match_a_plain_sql_count(small_store: Store) -> None:
    result = analyse_store(small_store)
    with small_store.connect(read_only=True) as con:
        units = dict(con.execute("SELECT arm, count(DISTINCT coalesce(unit_id, trace_id)) FROM predictions "
                                 "WHERE arm IS NOT NULL GROUP BY arm").fetchall())  # fmt: skip
        thumbs = con.execute("SELECT p.arm, count(*), sum(CASE WHEN f.value > 0 THEN 1 ELSE 0 END) FROM feedback f "
                             "JOIN predictions p USING (trace_id) WHERE p.arm IS NOT NULL AND f.type = 'thumb' "
                             "AND f.value IS NOT NULL GROUP BY p.arm").fetchall()  # fmt: skip
        dwell = con.execute("SELECT p.arm, f.value FROM feedback f JOIN predictions p USING (trace_id) "
                            "WHERE p.arm IS NOT NULL AND f.type = 'dwell' AND f.value IS NOT NULL").df()  # fmt: skip
    assert result.srm.counts == units
    arms = {(a.arm, a.metric): a for a in result.arms}
    for arm, n, up in thumbs:
        assert arms[(arm, "thumbs_up_rate")].n == n and arms[(arm, "thumbs_up_rate")].successes == up
    g = result.guardrails[0]
    a, b = (dwell[dwell.arm == x].value.to_numpy() for x in ("champion", "challenger"))
    assert g.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue, abs=1e-9)
    assert g.mann_whitney_p == pytest.approx(stats.mannwhitneyu(b, a, method="asymptotic").pvalue, abs=1e-9)
    assert result.timelines and result.timelines[0].n_control[-1] == arms[("champion", "thumbs_up_rate")].n
    assert_json_clean(result)


def test_store_metrics_and_cuped_run_on_every_kind(small_store: Store) -> None:
    result = analyse_store(small_store, ABTestRequest(metrics=("clicks_per_session", "mean_rating", "correction_rate"),
                                                      guardrails=(), cuped=True))  # fmt: skip
    kinds = {c.metric: c.kind for c in result.comparisons}
    assert set(kinds) == {"clicks_per_session", "mean_rating", "correction_rate"}
    assert_json_clean(result)
    with pytest.raises(InputError, match="unknown metric"):
        analyse_store(small_store, ABTestRequest(metrics=("revenue",)))


def test_demo_true_lift_lies_inside_the_reported_interval(demo: tuple[Store, dict]) -> None:
    store, truth = demo
    ab = truth["ab_test"]
    result = analyse_store(store, ABTestRequest(metrics=(ab["metric"],)))
    c = next(c for c in result.comparisons if c.metric == ab["metric"])
    assert (c.control, c.variant) == (ab["control"], ab["variant"])
    assert c.diff_ci[0] <= ab["true_lift_abs"] <= c.diff_ci[1]
    assert c.control_mean == pytest.approx(ab["control_rate"], abs=0.04)
    assert result.srm.ok
    assert result.evidence()["srm"]["ok"] is True and result.evidence()["verdict_text"] == result.verdict_text


def test_verdicts_in_words_ship_keep_control_and_keep_running() -> None:
    ship = analyse_summary([
        {"metric": "conversion", "arm": "control", "n": "20000", "successes": "6000"},
        {"metric": "conversion", "arm": "variant", "n": "20000", "successes": "6400"},
        {"metric": "signup", "arm": "control", "n": "20000", "successes": "2000"},
        {"metric": "signup", "arm": "variant", "n": "20000", "successes": "2010"},
    ])  # fmt: skip
    assert ship.verdict == "ship"
    assert ship.verdict_text.startswith("Ship variant: conversion +2.0 pts [") and "(Holm)" in ship.verdict_text
    assert "signup unchanged" in ship.verdict_text and ship.verdict_text.endswith("SRM ok.")
    worse = analyse_summary([{"arm": "control", "n": "20000", "successes": "6400"},
                             {"arm": "variant", "n": "20000", "successes": "6000"}])  # fmt: skip
    assert worse.verdict == "keep_control" and worse.verdict_text.startswith("Keep control:")
    small = analyse_summary([{"arm": "control", "n": "1000", "successes": "300"},
                             {"arm": "variant", "n": "1000", "successes": "310"}])  # fmt: skip
    status = small.power[0]
    assert small.verdict == "keep_running"
    assert small.verdict_text.startswith(f"Keep running: {status.share_of_needed:.0%} of the needed sample")
