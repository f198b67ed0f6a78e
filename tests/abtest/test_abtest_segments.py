"""A/B results by dimension (`--by`): per value of a column each metric's test against statsmodels and scipy on
the raw rows, Cochran's Q against statsmodels, the too-small rule, the adjustment, errors, and the demo's truth."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from tests.conftest import ROOT
from workbench.abtest.analyse import analyse_file, analyse_store
from workbench.abtest.cli import format_result
from workbench.abtest.request import ABTestRequest
from workbench.core.errors import InputError
from workbench.sources.store import Store

# 6,000 units, one prediction each, alternating arms. The variant lifts the thumbs-up rate by 15 points on desktop
# only (50% → 65%), not on mobile; tablet holds 2% of the rows (about 60 per arm: too small to read). Dwell
# time has no effect anywhere. `country` has 60 values (more than max_segment_values).
PREDICTIONS = """
    INSERT INTO predictions (trace_id, ts, model_version, prediction, score, arm, unit_id, device, country)
    SELECT 's-' || i, TIMESTAMPTZ '2026-03-01 00:00:00+00' + to_microseconds((i * 144000000)::BIGINT), 'v1', 0, 0.5,
           ['control', 'variant'][1 + i % 2], 'u-' || i,
           CASE WHEN i % 200 >= 196 THEN 'tablet' WHEN i % 100 < 45 THEN 'desktop' ELSE 'mobile' END,
           'c' || (i % 60)
    FROM range(6000) t(i)"""
FEEDBACK = """
    INSERT INTO feedback
    SELECT p.trace_id, p.ts + INTERVAL 1 HOUR, 'explicit', 'thumb',
           CASE WHEN d.u < CASE WHEN p.arm = 'variant' AND p.device = 'desktop' THEN 0.65 ELSE 0.5 END
                THEN 1.0 ELSE 0.0 END, NULL, NULL
    FROM predictions p JOIN draws d ON p.trace_id = 's-' || d.i
    UNION ALL
    SELECT p.trace_id, p.ts + INTERVAL 2 HOUR, 'implicit', 'dwell', d.dwell, NULL, NULL
    FROM predictions p JOIN draws d ON p.trace_id = 's-' || d.i"""
JOINED = """SELECT p.device, p.arm, f.value FROM feedback f JOIN predictions p USING (trace_id)
            WHERE f.type = ? AND f.value IS NOT NULL ORDER BY p.device, p.arm"""
METRICS = ("thumbs_up_rate",)
GUARDRAILS = ("dwell_time",)


@pytest.fixture(scope="module")
def designed(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("ab-seg") / "segments.duckdb")
    with store.connect(read_only=False) as con:
        con.execute("ALTER TABLE predictions ADD COLUMN device VARCHAR")
        con.execute("ALTER TABLE predictions ADD COLUMN country VARCHAR")
        con.execute(PREDICTIONS)
        rng = np.random.default_rng(20)
        draws = pd.DataFrame({"i": np.arange(6000), "u": rng.random(6000), "dwell": rng.gamma(2.0, 15.0, 6000)})
        con.register("draws", draws)
        con.execute(FEEDBACK)
    return store


@pytest.fixture(scope="module")
def by_device(designed: Store):  # type: ignore[no-untyped-def]
    return analyse_store(designed, ABTestRequest(metrics=METRICS, guardrails=GUARDRAILS, by="device"))


def _raw(store: Store, feedback_type: str) -> dict[tuple[str, str], np.ndarray]:
    with store.connect() as con:
        frame = con.execute(JOINED, [feedback_type]).df()
    return {key: group["value"].to_numpy() for key, group in frame.groupby(["device", "arm"])}


def _rows(result, metric: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {r.value: r for r in result.segments.rows if r.metric == metric}


def test_each_value_of_a_rate_matches_statsmodels_on_the_raw_rows(designed: Store, by_device) -> None:  # type: ignore[no-untyped-def]
    raw = _raw(designed, "thumb")
    rows = _rows(by_device, "thumbs_up_rate")
    assert set(rows) == {"desktop", "mobile", "tablet"}
    for device, row in rows.items():
        a, b = raw[(device, "control")], raw[(device, "variant")]
        assert (row.n_control, row.n_variant) == (len(a), len(b))
        assert row.diff == pytest.approx(b.mean() - a.mean(), abs=1e-12)
        _z, p = proportions_ztest([b.sum(), a.sum()], [len(b), len(a)])
        assert row.p_value == pytest.approx(p, rel=1e-9)


def test_each_value_of_a_mean_matches_scipy_welch_on_the_raw_rows(designed: Store, by_device) -> None:  # type: ignore[no-untyped-def]
    raw = _raw(designed, "dwell")
    for device, row in _rows(by_device, "dwell_time").items():
        a, b = raw[(device, "control")], raw[(device, "variant")]
        welch = stats.ttest_ind(b, a, equal_var=False)
        assert row.diff == pytest.approx(b.mean() - a.mean(), abs=1e-9)
        assert row.p_value == pytest.approx(welch.pvalue, rel=1e-9)


def test_the_values_partition_the_overall_observations(by_device) -> None:  # type: ignore[no-untyped-def]
    overall = next(c for c in by_device.comparisons if c.metric == "thumbs_up_rate")
    rows = _rows(by_device, "thumbs_up_rate").values()
    assert sum(r.n_control for r in rows) == overall.n_control
    assert sum(r.n_variant for r in rows) == overall.n_variant


def test_cochran_q_flags_the_desktop_only_lift_and_equals_statsmodels(designed: Store, by_device) -> None:  # type: ignore[no-untyped-def]
    raw = _raw(designed, "thumb")
    readable = ("desktop", "mobile")  # tablet is too small: it is left out of the test
    diffs, variances = [], []
    for device in readable:
        a, b = raw[(device, "control")], raw[(device, "variant")]
        diffs.append(b.mean() - a.mean())
        variances.append(a.mean() * (1 - a.mean()) / len(a) + b.mean() * (1 - b.mean()) / len(b))
    reference = combine_effects(np.array(diffs), np.array(variances), method_re="chi2")
    h = next(h for h in by_device.segments.heterogeneity if h.metric == "thumbs_up_rate")
    assert h.k == 2 and h.q == pytest.approx(reference.q, rel=1e-9)
    assert h.p_value == pytest.approx(reference.test_homogeneity().pvalue, rel=1e-9)
    assert h.i2 == pytest.approx(max(0.0, reference.i2), rel=1e-9, abs=1e-12)
    assert h.differs and h.p_value < 0.01 and "differs across device" in h.text
    assert any("differs across device" in w for w in by_device.warnings)
    reason = f"by device, thumbs-up rate (variant): Cochran's Q p={h.p_value:.2g} < 0.1 (differs), I²={h.i2:.0%}"
    assert reason in by_device.reasons
    dwell = next(h for h in by_device.segments.heterogeneity if h.metric == "dwell_time")
    assert dwell.differs is False and "no evidence" in dwell.text


def test_the_breakdown_informs_and_leaves_the_verdict_rule_alone(designed: Store, by_device) -> None:  # type: ignore[no-untyped-def]
    plain = analyse_store(designed, ABTestRequest(metrics=METRICS, guardrails=GUARDRAILS))
    assert (by_device.verdict, by_device.verdict_text) == (plain.verdict, plain.verdict_text)
    assert plain.segments is None and plain.to_json()["segments"] == []


def test_a_value_too_small_to_read_gets_a_warning_and_no_verdict(by_device) -> None:  # type: ignore[no-untyped-def]
    tablet = _rows(by_device, "thumbs_up_rate")["tablet"]
    assert min(tablet.n_control, tablet.n_variant) < 100 and tablet.verdict == "too_small"
    assert tablet.diff_ci is None and tablet.p_adjusted is None and not tablet.significant
    assert tablet.prob_beat_control is None and tablet.expected_loss is None
    assert any(w.startswith("device=tablet:") and "too small to read" in w for w in by_device.warnings)
    desktop = _rows(by_device, "thumbs_up_rate")["desktop"]
    assert desktop.verdict == "better" and desktop.diff_ci[0] > 0 and desktop.expected_loss < 1e-3


def test_the_adjustment_spans_every_readable_value_metric_and_variant(by_device) -> None:  # type: ignore[no-untyped-def]
    rows = [r for r in by_device.segments.rows if r.verdict != "too_small"]
    expected = multipletests([r.p_value for r in rows], method="holm")[1]
    assert [r.p_adjusted for r in rows] == pytest.approx(list(expected), rel=1e-12)
    assert by_device.segments.family_size == len(rows) == 4  # desktop and mobile × 2 metrics (tablet too small)
    assert "Holm" in by_device.segments.adjustment_text and "4 per-segment tests" in by_device.segments.adjustment_text
    for r in rows:  # an interval at the per-test level excludes 0 exactly when the adjusted p is below α
        assert (r.diff_ci[0] > 0 or r.diff_ci[1] < 0) == (r.p_adjusted <= 0.05)


def test_the_json_document_carries_the_breakdown(by_device) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(json.dumps(by_device.to_json()))
    assert doc["segment_by"] == "device" and doc["segment_adjustment"]["family_size"] == 4
    assert doc["segment_adjustment"]["min_n"] == 100 and doc["segment_adjustment"]["method"] == "holm"
    keys = {"value", "metric", "variant", "diff", "diff_ci", "rel_lift", "p_value", "p_adjusted", "significant",
            "prob_beat_control", "expected_loss", "verdict"}  # fmt: skip
    assert all(keys <= set(r) for r in doc["segments"]) and len(doc["segments"]) == 6
    assert {"metric", "variant", "q", "df", "p_value", "i2", "differs", "text"} <= set(doc["heterogeneity"][0])


def test_the_text_report_gives_q_first_then_a_line_per_value(by_device) -> None:  # type: ignore[no-untyped-def]
    text = format_result(by_device)
    q = text.index("by device: thumbs-up rate (variant): the effect differs across device")
    desktop = text.index("  device=desktop · thumbs-up rate (variant): +")
    assert q < desktop and "device=tablet · thumbs-up rate (variant): " in text and "too small to read" in text
    assert by_device.segments.adjustment_text in text


def test_bad_breakdowns_are_one_line_errors(designed: Store) -> None:
    with pytest.raises(InputError, match="no such column"):
        analyse_store(designed, ABTestRequest(metrics=METRICS, by="colour"))
    with pytest.raises(InputError, match="60 distinct values, more than max_segment_values"):
        analyse_store(designed, ABTestRequest(metrics=METRICS, by="country"))
    with pytest.raises(InputError, match="not typed-in summaries"):
        ABTestRequest(mode="summary", by="device")


def test_a_units_file_breaks_down_by_its_own_column_as_scipy_and_statsmodels_say(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    n = 3000
    arm = np.where(np.arange(n) % 2 == 0, "A", "B")
    plan = rng.choice(["free", "pro"], n, p=[0.7, 0.3])
    rate = np.where((arm == "B") & (plan == "pro"), 0.5, 0.3)  # B helps pro users only
    frame = pd.DataFrame({"arm": arm, "converted": (rng.random(n) < rate).astype(int), "plan": plan,
                          "minutes": rng.gamma(2.0, 10.0, n)})  # fmt: skip
    frame.loc[::97, "plan"] = None  # a missing plan is a value of its own
    path = tmp_path / "units.csv"
    frame.to_csv(path, index=False)
    result = analyse_file(path, ABTestRequest(mode="file", arm_col="arm", metric_col="converted", by="plan"))
    rows = {r.value: r for r in result.segments.rows}
    assert set(rows) == {"free", "pro", "(missing)"}
    for value, group in frame.fillna({"plan": "(missing)"}).groupby("plan"):
        a, b = group[group.arm == "A"].converted, group[group.arm == "B"].converted
        _z, p = proportions_ztest([b.sum(), a.sum()], [len(b), len(a)])
        assert rows[value].p_value == pytest.approx(p, rel=1e-9) and rows[value].n_control == len(a)
    assert rows["pro"].verdict == "better" and rows["(missing)"].verdict == "too_small"
    assert result.segments.heterogeneity[0].differs
    means = analyse_file(path, ABTestRequest(mode="file", arm_col="arm", metric_col="minutes", by="plan"))
    pro = frame[frame.plan == "pro"]
    welch = stats.ttest_ind(pro[pro.arm == "B"].minutes, pro[pro.arm == "A"].minutes, equal_var=False)
    assert next(r for r in means.segments.rows if r.value == "pro").p_value == pytest.approx(welch.pvalue, rel=1e-9)


def _delta_ratio(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Σy/Σx and its delta-method variance (s_y² − 2R·s_xy + R²·s_x²)/(n·x̄²), by hand (Deng et al. 2018)."""
    r = y.sum() / x.sum()
    cov = np.cov(y, x, ddof=1)
    return r, (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (len(y) * x.mean() ** 2)


def test_a_ratio_per_value_matches_the_delta_method_by_hand(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(8)
    n = 2400
    frame = pd.DataFrame({"arm": np.where(np.arange(n) % 2 == 0, "A", "B"), "device": rng.choice(["web", "app"], n),
                          "sessions": rng.integers(1, 6, n).astype(float)})  # fmt: skip
    frame["clicks"] = rng.poisson(frame.sessions * np.where(frame.arm == "B", 1.2, 1.0))
    path = tmp_path / "ratio.csv"
    frame.to_csv(path, index=False)
    request = ABTestRequest(mode="file", arm_col="arm", metric_col="clicks", denominator_col="sessions", kind="ratio",
                            by="device")  # fmt: skip
    rows = {r.value: r for r in analyse_file(path, request).segments.rows}
    for device, group in frame.groupby("device"):
        (ra, va), (rb, vb) = (_delta_ratio(g.clicks.to_numpy(float), g.sessions.to_numpy()) for g in
                              (group[group.arm == "A"], group[group.arm == "B"]))  # fmt: skip
        z = (rb - ra) / np.sqrt(va + vb)
        assert rows[device].diff == pytest.approx(rb - ra, rel=1e-12)
        assert rows[device].p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)


def test_the_cli_refuses_a_bad_column_in_one_line(designed: Store) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "workbench.cli", "abtest", "--db", str(designed.path), *args],
                              cwd=ROOT, capture_output=True, text=True)  # fmt: skip

    bad = cli("--by", "colour", "--json")  # (the golden documents hold a --by run's JSON)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    message = [line for line in bad.stderr.splitlines() if not line.startswith("  ")]  # not the progress lines
    assert len(message) == 1 and "--by 'colour': no such column" in message[0]


def test_the_demo_lift_is_the_same_in_every_region_and_the_breakdown_says_so(demo: tuple[Store, dict]) -> None:
    store, truth = demo
    ab = truth["ab_test"]
    result = analyse_store(store, ABTestRequest(metrics=(ab["metric"],), guardrails=(), by="region"))
    h = result.segments.heterogeneity[0]
    assert h.k == 4 and h.differs is False  # the injected lift does not depend on the region
    assert abs(h.pooled - ab["true_lift_abs"]) < 3 * h.pooled_se
    for row in result.segments.rows:
        assert row.verdict != "too_small" and row.diff_ci[0] <= ab["true_lift_abs"] <= row.diff_ci[1]
    assert math.isfinite(h.q)
