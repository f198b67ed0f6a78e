"""Browser walk of the Fairness page's trade-offs (issue 20): the model versions on accuracy vs disparity with the
front, the mitigation preview said to be one, its chart and thresholds, and the thresholds downloaded."""

import json

import pytest

from tests.e2e.conftest import screenshot, wait_for_app, wait_for_charts

pytestmark = pytest.mark.e2e


def test_tradeoffs_tab_draws_the_front_and_the_preview_and_exports_the_thresholds(page, app_url, tmp_path):
    page.goto(f"{app_url}/fairness")
    wait_for_app(page)
    page.get_by_role("button", name="Groups (CSV)").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Trade-offs and mitigation").click()
    wait_for_app(page)
    panel = page.get_by_role("tabpanel", name="Trade-offs and mitigation")
    text = panel.inner_text()
    assert "Model versions: accuracy vs disparity" in text and "not a retrained model" in text
    assert "REDUCES" in text and "ThresholdOptimizer (equalized odds)" in text
    assert panel.locator("[data-testid=stPlotlyChart]").count() == 2
    assert wait_for_charts(page, 3) >= 3
    assert page.locator("[data-testid=stException]").count() == 0
    panel.locator("[data-testid=stPlotlyChart]").first.scroll_into_view_if_needed()
    wait_for_app(page)
    screenshot(page, "fairness_tradeoffs")

    with page.expect_download() as info:
        page.get_by_role("button", name="Thresholds (JSON)").click()
    path = tmp_path / "thresholds.json"
    info.value.save_as(path)
    document = json.loads(path.read_text())
    assert document["constraint"] == "equalized_odds" and document["verdict"] == "reduces"
    assert [t["group"] for t in document["thresholds"]] == ["east", "north", "south", "west"]
    assert "not a retrained model" in document["note"]
    with page.expect_download() as info:
        page.get_by_role("button", name="Thresholds (CSV)").click()
    csv_path = tmp_path / "thresholds.csv"
    info.value.save_as(csv_path)
    assert csv_path.read_text().startswith("group,threshold_0,p_0,threshold_1,p_1")
