"""AppTest of the Fairness page: verdict, group table, metric and attribute pickers, downloads, run recorded."""

from __future__ import annotations

import json

import pytest

from tests.helpers.app_pages import routed_page
from tests.helpers.demo_stores import copy_demo
from workbench.demo.scenario import Scenario
from workbench.sources.evidence import latest_runs


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    target = tmp_path_factory.mktemp("fairness-app") / "workbench.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=20_000, days=30), target)[0]


@pytest.fixture()
def page(demo_store, monkeypatch, navigation_app):
    monkeypatch.delenv("WORKBENCH_SETTINGS", raising=False)
    return routed_page(demo_store.path, "pages/fairness.py", monkeypatch), demo_store


def test_page_shows_the_failing_region_and_records_the_run(page):
    app, store = page
    assert not app.exception
    assert app.title[0].value == "Fairness"
    (verdict,) = app.error
    assert verdict.value.startswith("**FAIL** — FPR for region=south is ")
    table = app.dataframe[0].value
    statuses = dict(zip(table["group"], table["status"], strict=True))
    assert statuses == {"east": "pass", "north": "reference", "south": "fail", "west": "pass"}
    assert "FPR 95% CI" in table.columns
    # the page shows the columns that fit (the rest in "All columns"); the reference's ratio to itself is "—"
    main = app.dataframe[0].proto
    assert list(main.column_order) == ["group", "status", "n", "labelled", "FPR", "FPR 95% CI",
                                       "ratio to reference", "ratio 95% CI", "adjusted p", "flags"]  # fmt: skip
    assert main.placeholder == "—"
    reference = table[table["status"] == "reference"]
    assert reference["ratio to reference"].isna().all() and reference["ratio 95% CI"].isna().all()
    full = app.dataframe[1]
    assert {"positives", "negatives", "TPR", "selection rate"} <= set(full.value.columns)
    assert not full.proto.column_order
    run = latest_runs(store)["fairness"]
    assert run.verdict == "fail" and run.summary["sensitive"] == ["region"]
    downloads = [b.label for b in app.get("download_button")]  # the trade-offs tab's thresholds, then the audit's
    assert downloads == ["Thresholds (JSON)", "Thresholds (CSV)", "Audit (JSON)", "Groups (CSV)"]
    assert {m.label for m in app.metric} >= {"equalized odds difference", "demographic parity ratio"}


def test_intersections_and_another_metric(page):
    app, _ = page
    app.multiselect(key="fair_sensitive").set_value(["age_band", "region"]).run()
    app.selectbox(key="fair_metric").set_value("tpr").run()
    assert not app.exception
    table = app.dataframe[0].value
    assert len(table) == 16 and all(" × " in g for g in table["group"])
    assert "TPR 95% CI" in table.columns


def test_an_unknown_reference_group_is_one_line(page):
    app, _ = page
    app.text_input(key="fair_reference").input("mars").run()
    assert not app.exception
    assert any("reference group 'mars' is not one of" in e.value for e in app.error)


def test_a_bad_settings_file_is_one_line(page, tmp_path, monkeypatch):
    app, _ = page
    bad = tmp_path / "settings.toml"
    bad.write_text("[fairness]\nmax_ratio = 'big'\n", encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_SETTINGS", str(bad))
    app.run()
    assert not app.exception
    assert any("max_ratio" in e.value for e in app.error)


def test_the_captions_read_the_thresholds_from_the_settings(page, tmp_path, monkeypatch):
    app, _ = page
    custom = tmp_path / "settings.toml"
    custom.write_text("[fairness]\nmax_ratio = 1.5\nalpha = 0.01\nfour_fifths = 0.7\nbootstrap_resamples = 50\n",
                      encoding="utf-8")  # fmt: skip
    monkeypatch.setenv("WORKBENCH_SETTINGS", str(custom))
    app.run()
    assert not app.exception
    captions = [c.value for c in app.caption]
    assert any("ratio outside ×0.67–1.5 of the reference" in c and "(α=0.01)" in c for c in captions), captions
    assert any("below 70% (the settings' four_fifths" in c for c in captions)


def test_a_failing_intersection_lists_every_failing_group(page):
    """Issue 18: the sentence names all failing groups (no "and 1 more"); each comparison is a bullet below it."""
    app, store = page
    app.multiselect(key="fair_sensitive").set_value(["age_band", "region"]).run()
    assert not app.exception
    (verdict,) = app.error
    assert "more" not in verdict.value
    table = app.dataframe[0].value
    failing = list(table.loc[table["status"] == "fail", "group"])
    named = lambda text, group: all(f"={part}" in text for part in group.split(" × "))  # noqa: E731
    assert failing and all(named(verdict.value, group) for group in failing)
    (bullets,) = [m.value for m in app.markdown if m.value.startswith("- FPR for ")]
    reasons = bullets.splitlines()
    assert len(reasons) >= len(failing) and all(any(named(r, group) for r in reasons) for group in failing)
    assert latest_runs(store)["fairness"].summary["verdict_text"] == verdict.value.replace("**FAIL** — ", "fail: ")


def test_group_table_headers_spell_out_the_rates(page):
    app, _ = page
    config = json.loads(app.dataframe[1].proto.columns)
    assert "False positive rate" in config["FPR"]["help"] and "True positive rate" in config["TPR"]["help"]
    assert "Wilson" in config["FPR 95% CI"]["help"] and "Holm" in config["adjusted p"]["help"]


def test_tradeoffs_tab_shows_the_versions_front_and_the_mitigation_preview(page):
    """Issue 20: both verdicts in words, the preview said to be one, the thresholds table, and the gate's record."""
    app, store = page
    assert not app.exception
    boxes = [b.value for b in [*app.success, *app.info, *app.warning]]
    (comparison,) = [b for b in boxes if "v2" in b and "v1" in b and "equalized odds difference" in b]
    assert comparison.split(" — ")[0] in {"**BETTER**", "**WORSE**", "**TRADEOFF**", "**NO DIFFERENCE**"}
    (mitigation,) = [b for b in boxes if "ThresholdOptimizer (equalized odds)" in b]
    assert mitigation.startswith("**REDUCES** — ") and "0.000" in mitigation
    assert any("not a retrained model" in b for b in boxes)
    tables = [d.value for d in app.dataframe]
    (versions,) = [t for t in tables if "on the Pareto front" in t.columns]
    assert set(versions["version"]) == {"v1", "v2"} and versions["on the Pareto front"].any()
    (thresholds,) = [t for t in tables if "rule" in t.columns]
    assert list(thresholds["group"]) == ["east", "north", "south", "west"]
    assert thresholds["rule"].str.startswith("score ≥ ").all()
    assert "FPR after" in thresholds.columns and thresholds["FPR after"].nunique() == 1  # equal FPR after
    recorded = latest_runs(store)["fairness"].summary
    assert [t["group"] for t in recorded["mitigation"]["thresholds"]] == ["east", "north", "south", "west"]


def test_another_constraint_and_none(page):
    app, _ = page
    app.selectbox(key="fair_mitigate").set_value("demographic_parity").run()
    assert not app.exception
    assert any("ThresholdOptimizer (demographic parity)" in b.value for b in [*app.success, *app.info, *app.warning])
    app.selectbox(key="fair_mitigate").set_value("(none)").run()
    assert not app.exception
    assert any("Pick a constraint above" in i.value for i in app.info)
    assert [b.label for b in app.get("download_button")] == ["Audit (JSON)", "Groups (CSV)"]
