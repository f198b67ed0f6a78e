"""Drift between two files end to end (engine aggregates → statistics → verdict), checked against numpy/scipy."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from workbench.core.errors import InputError
from workbench.drift.files import compare_files
from workbench.drift.request import DriftRequest
from workbench.stats.divergence import psi
from workbench.stats.drift import DriftSettings, bin_counts, merged_edges
from workbench.stats.multiple import adjust_pvalues

SETTINGS = DriftSettings()


def frames(n_ref: int = 4000, n_cur: int = 3000, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(
        {
            "amount": rng.lognormal(3, 0.7, n_ref),
            "stable": rng.normal(0, 1, n_ref),
            "count": rng.poisson(3, n_ref).astype("int64"),
            "device": rng.choice(["mobile", "desktop", "tablet"], n_ref, p=[0.6, 0.3, 0.1]),
        }
    )
    cur = pd.DataFrame(
        {
            "amount": rng.lognormal(3, 0.7, n_cur) * 1.5,
            "stable": rng.normal(0, 1, n_cur),
            "count": rng.poisson(3, n_cur).astype("int64"),
            "device": rng.choice(["mobile", "desktop", "tablet", "watch"], n_cur, p=[0.5, 0.3, 0.1, 0.1]),
        }
    )
    return ref, cur


@pytest.fixture()
def files(tmp_path):
    ref, cur = frames()
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    return tmp_path / "ref.parquet", tmp_path / "cur.csv", ref, cur


def test_every_statistic_equals_its_reference_on_raw_values(files):
    ref_path, cur_path, ref, cur = files
    result = compare_files(DriftRequest(ref_path, cur_path, multivariate=False))
    for name in ("amount", "stable", "count"):
        f = result.feature(name)
        r, c = ref[name].to_numpy(float), cur[name].to_numpy(float)
        edges = merged_edges(np.quantile(r, np.arange(1, 10) / 10))
        ks = stats.ks_2samp(r, c)
        assert f.type == "numeric" and f.ks_method == "exact"
        assert f.ks_statistic == pytest.approx(ks.statistic, abs=1e-9)
        assert f.ks_p_value == pytest.approx(ks.pvalue, abs=1e-9)
        assert f.psi == pytest.approx(psi(bin_counts(r, edges), bin_counts(c, edges)), abs=1e-9)
        assert f.js_distance == pytest.approx(
            jensenshannon(bin_counts(r, edges), bin_counts(c, edges), base=2), abs=1e-9
        )
        expected_w = stats.wasserstein_distance(r, c) / max(np.std(r), 0.001)
        assert f.wasserstein == pytest.approx(expected_w, abs=1e-9)
        assert (f.n_reference, f.n_current) == (len(r), len(c))


def test_categorical_feature_lists_unseen_categories_and_equals_scipy(files):
    ref_path, cur_path, ref, cur = files
    f = compare_files(DriftRequest(ref_path, cur_path, multivariate=False)).feature("device")
    assert f.type == "categorical" and f.test == "chi2" and f.unseen_categories == ["watch"]
    cats = f.distribution["categories"]
    table = np.array([[(ref["device"] == c).sum() for c in cats], [(cur["device"] == c).sum() for c in cats]])
    expected = stats.chi2_contingency(table, correction=False)
    assert f.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert f.p_value == pytest.approx(expected.pvalue, abs=1e-9)
    assert f.psi == pytest.approx(psi(table[0], table[1]), abs=1e-12)


def test_large_reference_verdict_is_by_psi(files):
    ref_path, cur_path, _, _ = files
    result = compare_files(DriftRequest(ref_path, cur_path, multivariate=False))
    assert result.summary["rule"] == "psi"
    assert result.feature("amount").drift and result.feature("device").drift
    assert not result.feature("stable").drift and not result.feature("count").drift
    assert result.summary["n_drifted"] == 2 and result.summary["n_features"] == 4
    assert result.summary["share_drifted"] == 0.5 and result.summary["dataset_drift"] is True
    assert result.verdict == "drift"
    assert result.verdict_text.startswith("dataset drift: yes — 2 of 4 features drifted")


def test_small_reference_verdict_is_by_bh_adjusted_p_values(tmp_path):
    ref, cur = frames(n_ref=300, n_cur=300, seed=3)
    ref.to_parquet(tmp_path / "r.parquet")
    cur.to_parquet(tmp_path / "c.parquet")
    result = compare_files(DriftRequest(tmp_path / "r.parquet", tmp_path / "c.parquet", multivariate=False))
    assert result.summary["rule"] == "p_value"
    raw = [f.p_value for f in result.features]
    np.testing.assert_allclose([f.p_adjusted for f in result.features], adjust_pvalues(raw, "bh"), atol=1e-12)
    for f in result.features:
        assert f.drift == (f.p_adjusted < 0.05)
        assert f.decided_by == "p_value" if f.drift else True


def test_categorical_option_forces_a_numeric_column_to_categories(files):
    ref_path, cur_path, _, _ = files
    result = compare_files(
        DriftRequest(ref_path, cur_path, features=["count"], categorical=["count"], multivariate=False)
    )
    (f,) = result.features
    assert f.type == "categorical" and f.test == "chi2"


def test_grid_method_above_the_cap_says_so_and_stays_close(files):
    ref_path, cur_path, ref, cur = files
    tight = replace(SETTINGS, ks_exact_max_rows=1000)
    f = compare_files(DriftRequest(ref_path, cur_path, features=["amount"], multivariate=False), tight).feature(
        "amount"
    )
    exact = stats.ks_2samp(ref["amount"], cur["amount"])
    assert f.ks_method == "grid"
    assert 0 <= exact.statistic - f.ks_statistic <= f.ks_max_error + 1e-12
    assert f.wasserstein == pytest.approx(
        stats.wasserstein_distance(ref["amount"], cur["amount"]) / np.std(ref["amount"]), rel=0.01
    )


def test_missing_share_change_is_drift_of_its_own(tmp_path):
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 5000)})
    cur = pd.DataFrame({"x": rng.normal(0, 1, 5000)})
    cur.loc[: int(0.3 * len(cur)), "x"] = np.nan  # 30% missing, values unchanged
    ref.to_parquet(tmp_path / "r.parquet")
    cur.to_parquet(tmp_path / "c.parquet")
    f = compare_files(DriftRequest(tmp_path / "r.parquet", tmp_path / "c.parquet", multivariate=False)).feature("x")
    assert f.missing_share_reference == 0 and f.missing_share_current == pytest.approx(0.3, abs=0.001)
    assert f.missing_drift and f.drift and not f.value_drift and f.decided_by == "missing"


def test_constant_empty_and_all_missing_columns_warn_without_crash_or_nan(tmp_path):
    n = 2000
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"constant": np.ones(n), "all_missing": [np.nan] * n, "ok": rng.normal(0, 1, n),
                        "label_text": ["a"] * n})  # fmt: skip
    cur = pd.DataFrame({"constant": np.ones(n), "all_missing": [np.nan] * n, "ok": rng.normal(0, 1, n),
                        "label_text": ["a"] * n})  # fmt: skip
    ref.to_parquet(tmp_path / "r.parquet")
    cur.to_parquet(tmp_path / "c.parquet")
    result = compare_files(DriftRequest(tmp_path / "r.parquet", tmp_path / "c.parquet"))
    document = result.to_dict()
    json.dumps(document, allow_nan=False)  # no NaN anywhere
    assert result.feature("all_missing").status == "insufficient" and not result.feature("all_missing").drift
    assert any("all_missing" in w and "no values" in w for w in result.warnings)
    assert any("constant" in w for w in result.warnings)
    assert result.feature("constant").psi == 0.0 and not result.feature("constant").drift
    assert result.feature("label_text").p_value is None  # one category: no chi-square test, no crash


def test_an_empty_current_file_gives_no_verdict(tmp_path):
    ref, _ = frames()
    ref.to_parquet(tmp_path / "r.parquet")
    ref.head(0).to_parquet(tmp_path / "c.parquet")
    result = compare_files(DriftRequest(tmp_path / "r.parquet", tmp_path / "c.parquet"))
    assert result.verdict == "insufficient" and result.summary["n_features"] == 0
    json.dumps(result.to_dict(), allow_nan=False)


def test_bad_input_is_one_clear_error(files, tmp_path):
    ref_path, cur_path, _, _ = files
    with pytest.raises(InputError, match="no such file"):
        compare_files(DriftRequest(tmp_path / "missing.parquet", cur_path))
    with pytest.raises(InputError, match="not in both files"):
        compare_files(DriftRequest(ref_path, cur_path, features=["nope"]))
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(InputError, match=r"bad\.parquet"):
        compare_files(DriftRequest(bad, cur_path))


def test_result_json_has_the_design_contract_keys(files):
    ref_path, cur_path, _, _ = files
    document = compare_files(DriftRequest(ref_path, cur_path)).to_dict()
    keys = {"name", "type", "test", "statistic", "p_value", "p_adjusted", "threshold", "drift", "psi", "js_distance",
            "wasserstein", "ks_statistic", "ks_p_value", "n_reference", "n_current"}  # fmt: skip
    assert all(keys <= set(f) for f in document["features"])
    assert {"n_features", "n_drifted", "share_drifted", "dataset_drift"} <= set(document["summary"])
    assert document["multivariate"]["drift"] is True
    assert document["multivariate"]["importance"][0]["feature"] in ("amount", "device")


def test_binning_pulled_values_gives_the_engines_counts_exactly():
    # exact mode bins the values it pulled for KS; the engine's GROUP BY must agree bin for bin
    import ibis

    from workbench.drift import queries as q

    rng = np.random.default_rng(5)
    x = np.concatenate([rng.lognormal(2, 1, 5000), np.floor(rng.normal(5, 2, 3000)), [np.nan, -1e9, 1e9]])
    con = ibis.duckdb.connect()
    table = con.create_table("t", pd.DataFrame({"x": x}))
    edges = merged_edges(np.nanquantile(x, np.linspace(0.1, 0.9, 9)))
    spec = q.grid_spec([float(np.nanquantile(x, 0.001)), float(np.nanquantile(x, 0.999))], 997)
    engine = q.numeric_counts(table, "x", edges, spec)
    pulled = q.pull_sorted(table, "x")
    local = q.counts_from_values(pulled, edges, spec, is_sorted=True)
    unsorted = q.counts_from_values(np.random.default_rng(1).permutation(pulled), edges, spec)
    for key in ("bin_counts", "grid_counts"):
        np.testing.assert_array_equal(engine[key], local[key])
        np.testing.assert_array_equal(unsorted[key], local[key])
    np.testing.assert_allclose(engine["grid_sums"], local["grid_sums"], rtol=1e-12, atol=1e-6)
    assert engine["grid_counts"].sum() == len(x) - 1


def test_columns_pulled_together_equal_each_column_pulled_alone_nulls_and_nan_left_out():
    import ibis

    from workbench.drift import queries as q

    rng = np.random.default_rng(3)
    n = 4000
    frame = pd.DataFrame(
        {
            "a": rng.normal(0, 1, n),
            "b": np.where(rng.random(n) < 0.2, np.nan, rng.lognormal(1, 1, n)),  # NaN in pandas: NULL in the table
            "c": np.floor(rng.normal(5, 2, n)),
            "d": rng.integers(0, 3, n),
            "e": [None] * n,  # all missing
        }
    )
    frame["e"] = frame["e"].astype("float64")
    con = ibis.duckdb.connect()
    table = con.create_table("t", frame)
    con.raw_sql("INSERT INTO t VALUES ('NaN'::DOUBLE, 1.0, 'NaN'::DOUBLE, 1, NULL)")  # NaN, not NULL
    features = ["a", "b", "c", "d", "e"]
    together = q.pull_sorted_many(table, features)
    assert list(together) == features
    for f in features:
        alone = q.pull_sorted(table, f)
        np.testing.assert_array_equal(together[f], alone, err_msg=f)
        expected = frame[f].dropna().to_numpy(dtype=float)
        if f == "b":
            expected = np.append(expected, 1.0)
        elif f == "d":
            expected = np.append(expected, 1)
        np.testing.assert_array_equal(alone, np.sort(expected), err_msg=f)
    assert together["e"].size == 0
    # grouped by the window's rows: two columns per query here, same order, same values
    assert q.pull_groups(features, q.PULL_VALUES // 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert q.pull_groups(features, None) == [[f] for f in features]
    pulled = list(q.pulled_in_order(table, features, rows=q.PULL_VALUES // 2))
    assert [f for f, _ in pulled] == features
    for f, values in pulled:
        np.testing.assert_array_equal(values, together[f], err_msg=f)
    # a name asked for twice (in one group or two) comes twice, each time with its own values
    for rows in (q.PULL_VALUES // 2, None):
        named = [f for f, _ in q.pulled_in_order(table, ["a", "a", "c", "a"], rows=rows)]
        assert named == ["a", "a", "c", "a"]


def test_moments_of_pulled_values_are_numpys_and_a_constant_has_std_zero():
    from workbench.drift import queries as q

    x = np.sort(np.random.default_rng(8).lognormal(2, 1, 5001))
    m = q.sorted_moments(x)
    assert m == {"m": float(np.mean(x)), "s": float(np.std(x)), "lo": x[0], "hi": x[-1]}
    constant = np.full(7, 0.1)
    assert np.std(constant) > 0  # numpy's mean of 0.1s is off by an ulp: the reason for the special case
    assert q.sorted_moments(constant) == {"m": 0.1, "s": 0.0, "lo": 0.1, "hi": 0.1}
    assert q.sorted_moments(np.array([])) == {"m": None, "s": None, "lo": None, "hi": None}
    assert q.sorted_moments(np.array([-np.inf, 0.0, np.inf]))["s"] is None


def test_infinite_and_huge_values_fall_in_the_outer_bins_with_a_warning(tmp_path):
    """±inf and 1e300 (a sentinel, an overflow upstream): no engine error in either KS mode, KS as scipy's on the
    raw values (which sorts inf like any number), PSI on the open outer decile bins, a warning, no NaN in the JSON."""
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 4000), "y": rng.normal(0, 1, 4000)})
    cur = pd.DataFrame({"x": rng.normal(0.3, 1, 3000), "y": rng.normal(0, 1, 3000)})
    cur.loc[:4, "x"] = [np.inf, -np.inf, np.inf, 1e300, -1e300]
    ref.loc[:1, "y"] = [np.inf, -np.inf]
    ref.to_parquet(tmp_path / "r.parquet")
    cur.to_parquet(tmp_path / "c.parquet")
    exact = compare_files(DriftRequest(tmp_path / "r.parquet", tmp_path / "c.parquet", multivariate=False), SETTINGS)
    grid_settings = replace(SETTINGS, ks_exact_max_rows=1000)
    grid = compare_files(
        DriftRequest(tmp_path / "r.parquet", tmp_path / "c.parquet", multivariate=False), grid_settings
    )
    for name, window in (("x", "current"), ("y", "reference")):
        expected = stats.ks_2samp(ref[name], cur[name])
        edges = merged_edges(np.quantile(ref[name], np.linspace(0.1, 0.9, 9)))
        expected_psi = psi(bin_counts(ref[name], edges), bin_counts(cur[name], edges))
        for result, method in ((exact, "exact"), (grid, "grid")):
            f = result.feature(name)
            assert f.ks_method == method
            assert f.psi == pytest.approx(expected_psi, abs=1e-12)
            if method == "exact":
                assert f.ks_statistic == pytest.approx(expected.statistic, abs=1e-12)
                assert f.ks_p_value == pytest.approx(expected.pvalue, abs=1e-9)
            else:
                assert -1e-12 <= expected.statistic - f.ks_statistic <= f.ks_max_error + 1e-12
            assert any(f"{name}: infinite values in the {window} window" in w for w in result.warnings)
            json.dumps(result.to_dict(), allow_nan=False)


def test_columns_left_out_or_retyped_are_said_in_the_warnings(tmp_path):
    """A column that disappeared, a new one, a timestamp, a code that became text: each is named, none is silent."""
    rng = np.random.default_rng(3)
    n = 2000
    ref = pd.DataFrame({"a": rng.normal(0, 1, n), "when": pd.date_range("2026-01-01", periods=n, freq="h"),
                        "gone": rng.normal(0, 1, n), "code": rng.integers(0, 3, n),
                        "score": rng.random(n)})  # fmt: skip
    cur = pd.DataFrame({"a": rng.normal(0, 1, n), "when": pd.date_range("2026-03-01", periods=n, freq="h"),
                        "new": rng.normal(0, 1, n), "code": rng.choice(["0", "1", "2"], n),
                        "score": rng.random(n)})  # fmt: skip
    ref.to_parquet(tmp_path / "r.parquet")
    cur.to_parquet(tmp_path / "c.parquet")
    result = compare_files(DriftRequest(tmp_path / "r.parquet", tmp_path / "c.parquet", multivariate=False))
    assert [f.name for f in result.features] == ["a", "code"]
    assert result.feature("code").type == "categorical"
    assert list(result.warnings[:4]) == [
        "in the reference file only, not compared: gone",
        "in the current file only, not compared: new",
        "not compared (timestamps or lists): when",
        "numeric in one file and text in the other, compared as categories: code",
    ]
    chosen = compare_files(
        DriftRequest(tmp_path / "r.parquet", tmp_path / "c.parquet", features=["a"], multivariate=False)
    )
    assert not any("file only" in w or "not compared" in w for w in chosen.warnings)  # the user chose the features


def test_categorical_features_only_in_grid_mode_and_a_feature_named_twice(tmp_path):
    rng = np.random.default_rng(9)
    for name, p in (("r", [0.5, 0.3, 0.2]), ("c", [0.3, 0.3, 0.4])):
        pd.DataFrame({"device": rng.choice(["web", "ios", "android"], 3000, p=p),
                      "plan": rng.choice(["free", "pro"], 3000)}).to_parquet(tmp_path / f"{name}.parquet")  # fmt: skip
    grid = replace(SETTINGS, ks_exact_max_rows=1000)  # above the cap: no numeric feature to bin, no count query
    result = compare_files(DriftRequest(tmp_path / "r.parquet", tmp_path / "c.parquet", multivariate=False), grid)
    assert [f.name for f in result.features] == ["device", "plan"]
    assert result.feature("device").drift and not result.feature("plan").drift
    twice = compare_files(
        DriftRequest(
            tmp_path / "r.parquet", tmp_path / "c.parquet", features=["plan", "device", "plan"], multivariate=False
        ),
        grid,
    )
    assert [f.name for f in twice.features] == ["plan", "device"]
    assert twice.feature("device").to_dict() == result.feature("device").to_dict()


@pytest.mark.parametrize("exact_max_rows", [1000, 2_000_000])
def test_a_numeric_feature_named_twice_is_compared_once_with_its_own_values(tmp_path, exact_max_rows):
    rng = np.random.default_rng(10)
    for name, shift in (("r", 0.0), ("c", 0.5)):
        pd.DataFrame({"a": rng.normal(shift, 1, 2500), "b": rng.lognormal(0, 1, 2500)}).to_parquet(
            tmp_path / f"{name}.parquet"
        )
    settings = replace(SETTINGS, ks_exact_max_rows=exact_max_rows)
    files = tmp_path / "r.parquet", tmp_path / "c.parquet"
    once = compare_files(DriftRequest(*files, features=["a", "b"], multivariate=False), settings)
    twice = compare_files(DriftRequest(*files, features=["a", "a", "b"], multivariate=False), settings)
    assert [f.name for f in twice.features] == ["a", "b"]
    for f in ("a", "b"):
        assert twice.feature(f).to_dict() == once.feature(f).to_dict()
    assert twice.feature("a").drift and not twice.feature("b").drift
