"""AppTest of the A/B test page: pickers, SRM line, verdict, results table, charts, downloads, evidence, calculator."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.app_pages import routed_page
from tests.helpers.demo_stores import copy_demo
from workbench.abtest.analyse import analyse_store
from workbench.abtest.request import ABTestRequest
from workbench.abtest.tables import SEGMENT_VERDICTS
from workbench.demo.scenario import Scenario
from workbench.sources.evidence import latest_runs
from workbench.sources.store import Store


@pytest.fixture(scope="module")
def ab_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    target = tmp_path_factory.mktemp("ab-app") / "workbench.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=20_000, days=30), target)[0]


@pytest.fixture()
def page(ab_store: Store, monkeypatch: pytest.MonkeyPatch, navigation_app: None) -> AppTest:
    return routed_page(ab_store.path, "pages/abtest.py", monkeypatch)


def test_store_mode_shows_pickers_verdict_table_charts_and_records_the_run(page: AppTest, ab_store: Store) -> None:
    app = page
    assert not app.exception
    assert app.selectbox(key="ab_control").value == "champion"
    assert app.multiselect(key="ab_metrics").value == ["thumbs_up_rate"]
    assert "SRM ok" in " ".join(c.value for c in app.caption)
    alerts = [a.value for a in app.warning] + [a.value for a in app.success] + [a.value for a in app.error]
    run = latest_runs(ab_store)["abtest"]
    assert run is not None and any(run.summary["verdict_text"] in a for a in alerts)
    assert run.summary["srm"]["ok"] is True
    table = app.dataframe[0].value
    assert list(table["variant"]) == ["challenger", "challenger"]
    assert table["CI level"].tolist() == ["95.0%", "95.0%"]  # one level: said once, in the caption
    shown = app.dataframe[0].proto.column_order
    assert "CI level" not in shown and "variant" not in shown and "guardrail" in shown
    assert "matching per-test level (95.0% here)" in " ".join(c.value for c in app.caption)
    everything = app.dataframe[1].value  # the same rows with every column, behind an expander
    assert {"p", "n control", "n variant", "test"} <= set(everything.columns)
    robust = app.dataframe[2].value  # capped beside uncapped, Mann–Whitney (means)
    assert list(robust["metric"]) == ["thumbs-up rate", "dwell time"]  # thumbs: the unit-level check
    assert robust["capped p"].notna().tolist() == [False, True]
    segments = app.dataframe[3].value
    assert {"region", "channel"} <= set(segments["segment"]) and segments["ok"].all()
    assert len(app.get("plotly_chart")) >= 4  # forest, cumulative, Bayes, power
    assert "not 1 − p" in " ".join(c.value for c in app.caption)
    labels = [b.label for b in app.get("download_button")]
    assert labels == ["Analysis (JSON)", "Comparisons (CSV)"]


def test_picking_metrics_reruns_the_analysis(page: AppTest) -> None:
    app = page
    app.multiselect(key="ab_metrics").set_value(["thumbs_up_rate", "mean_rating"]).run()
    assert not app.exception
    table = app.dataframe[0].value
    assert [m for m in table["metric"]] == ["thumbs-up rate", "mean rating", "dwell time (guardrail)"]


def test_calculator_mode_analyses_the_typed_in_table(page: AppTest) -> None:
    app = page
    app.get("button_group")[0].set_value("Calculator (typed-in results)").run()
    assert not app.exception
    table = app.dataframe[-1].value  # the first is the editable table itself
    assert list(table["variant"]) == ["variant"] and table["difference [CI]"].iloc[0].startswith("+1.50 pts [")
    app.radio(key="ab_calc_kind").set_value("mean").run()
    assert not app.exception
    assert app.dataframe[-1].value["test"].iloc[0] == "welch t"


def test_the_exports_are_the_cli_documents() -> None:
    from workbench.abtest.analyse import analyse_summary, export

    result = analyse_summary([{"arm": "a", "n": 1000, "successes": 300}, {"arm": "b", "n": 1000, "successes": 340}])
    doc = json.loads(export(result, "json"))
    assert doc["verdict"] == result.verdict_text
    assert export(result, "csv").splitlines()[0].startswith("role,metric,variant,control")


def test_file_mode_analyses_an_uploaded_units_file(page: AppTest) -> None:
    import numpy as np
    import pandas as pd
    from scipy import stats

    rng = np.random.default_rng(9)
    a, b = rng.normal(50, 10, 800), rng.normal(52, 10, 800)
    frame = pd.DataFrame({"group": ["A"] * 800 + ["B"] * 800, "minutes": np.r_[a, b]})
    app = page
    app.get("button_group")[0].set_value("A file (one row per unit)").run()
    assert not app.exception
    app.file_uploader(key="ab_file").set_value(("units.csv", frame.to_csv(index=False).encode(), "text/csv")).run()
    assert not app.exception
    assert app.selectbox(key="ab_file_arm").value == "group"
    assert app.selectbox(key="ab_file_metric").value == "minutes"
    table, robust = app.dataframe[0].value, app.dataframe[2].value  # [1]: the same table with every column
    assert robust["Mann–Whitney p"].iloc[0] == pytest.approx(stats.mannwhitneyu(b, a).pvalue, abs=1e-9)
    assert list(table["variant"]) == ["B"] and table["test"].iloc[0] == "welch t"
    assert table["p"].iloc[0] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue, abs=1e-9)


def test_a_sample_ratio_mismatch_puts_a_red_banner_above_the_results(page: AppTest) -> None:
    import pandas as pd

    frame = pd.DataFrame({"arm": ["A"] * 1200 + ["B"] * 800, "converted": [0, 1] * 1000})
    app = page
    app.get("button_group")[0].set_value("A file (one row per unit)").run()
    app.file_uploader(key="ab_file").set_value(("srm.csv", frame.to_csv(index=False).encode(), "text/csv")).run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert errors and errors[0].startswith("**Sample ratio mismatch**")
    assert any("untrustworthy" in e for e in errors[1:])  # the verdict says so too


def test_shadow_mode_compares_the_two_models_on_the_same_requests(page: AppTest) -> None:
    import numpy as np
    import pandas as pd
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(4)
    label = rng.integers(0, 2, 3000)
    champion = np.where(rng.random(3000) < 0.80, label, 1 - label)
    challenger = np.where(rng.random(3000) < 0.86, label, 1 - label)
    frame = pd.DataFrame({"v1": champion, "v2": challenger, "y": label.astype(float)})
    frame.loc[:499, "y"] = np.nan  # 500 requests without a label yet
    app = page
    app.get("button_group")[0].set_value("Shadow mode (same requests)").run()
    assert not app.exception
    app.file_uploader(key="ab_shadow_file").set_value(("pairs.csv", frame.to_csv(index=False).encode(), "text/csv"))
    app.run()
    assert not app.exception
    app.selectbox(key="ab_shadow_champion").set_value("v1").run()
    app.selectbox(key="ab_shadow_challenger").set_value("v2").run()
    app.selectbox(key="ab_shadow_label").set_value("y").run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Agreement"] == f"{(champion == challenger).mean():.1%}"
    known = frame.iloc[500:]
    right_a, right_b = known["v1"] == known["y"], known["v2"] == known["y"]
    assert metrics["Champion accuracy"] == f"{right_a.mean():.1%}"
    assert metrics["Challenger accuracy"] == f"{right_b.mean():.1%}"
    table = [
        [(right_a & right_b).sum(), (right_a & ~right_b).sum()],
        [(~right_a & right_b).sum(), (~right_a & ~right_b).sum()],
    ]
    reference = mcnemar(table, exact=True).pvalue
    assert reference < 0.05  # the challenger is right more often
    assert any("Challenger more accurate" in s.value for s in app.success)
    assert len(app.get("plotly_chart")) == 1  # McNemar's 2×2 table
    assert "2,500 of 3,000 requests are labelled" in " ".join(c.value for c in app.caption)
    assert [b.label for b in app.get("download_button")] == ["Shadow comparison (JSON)"]


def test_the_results_table_says_units_and_explains_its_headers(page: AppTest) -> None:
    """Issue 18: dwell time in seconds, p adjusted as "< 0.0001" or 2 digits, Holm / relative lift in the help."""
    app = page
    table = app.dataframe[0].value
    dwell = table[table["metric"].str.startswith("dwell time")].iloc[0]
    assert dwell["control"].endswith(" s") and " s [" in dwell["difference [CI]"]
    assert all(p == "< 0.0001" or float(p) >= 0.0001 for p in table["p adjusted"])
    config = json.loads(app.dataframe[0].proto.columns)
    assert "Holm" in config["p adjusted"]["help"] and "Relative lift" in config["lift [CI]"]["help"]
    assert "percentage points" in config["difference [CI]"]["help"]
    assert any("relative lift at" in c.value for c in app.caption)


def test_a_breakdown_shows_heterogeneity_first_then_a_forest_and_the_table(page: AppTest, ab_store: Store) -> None:
    app = page
    assert app.selectbox(key="ab_by").value == "(none)" and "region" in app.selectbox(key="ab_by").options
    charts_before = len(app.get("plotly_chart"))
    app.selectbox(key="ab_by").set_value("region").run()
    assert not app.exception
    expected = analyse_store(ab_store, ABTestRequest(metrics=("thumbs_up_rate",), guardrails=("dwell_time",),
                                                     control="champion", by="region")).segments  # fmt: skip
    assert "Results by region" in [h.value for h in app.subheader]
    boxes = [a.value for a in app.info] + [a.value for a in app.warning]
    for h in expected.heterogeneity:  # the Q test's sentence, one per metric and variant, above the lifts
        assert f"{h.text}." in boxes
    assert len(app.get("plotly_chart")) == charts_before + len(expected.heterogeneity)  # a forest per metric
    table = next(d.value for d in app.dataframe if "region" in d.value.columns and "risk" in d.value.columns)
    assert len(table) == len(expected.rows) and set(table["region"]) == set(expected.values)
    readable = [r for r in expected.rows if r.verdict != "too_small"]
    assert sorted(table["verdict"]) == sorted(SEGMENT_VERDICTS[r.verdict] for r in expected.rows)
    assert (table["risk"] != "").sum() == len(readable)
    assert expected.adjustment_text[1:] in " ".join(c.value for c in app.caption)
    main = app.dataframe[0]
    assert "risk" in main.proto.column_order  # risk beside the chance to win in the results table
