"""Browser walk of the A/B page's results by dimension: pick a column, read Cochran's Q first, then the forest plot
and the table with risk; the JSON download carries the breakdown."""

import json

import pytest

from tests.e2e.conftest import screenshot, wait_for_app, wait_for_charts

pytestmark = pytest.mark.e2e


def test_abtest_breaks_the_results_down_by_region(page, app_url, tmp_path):
    page.goto(f"{app_url}/abtest")
    wait_for_app(page)
    charts = wait_for_charts(page, 4)
    # the browser store is small (20k predictions): read values from 30 observations per arm
    smallest = page.get_by_role("spinbutton", name="Min. n per arm")
    smallest.fill("30")
    smallest.press("Enter")
    wait_for_app(page)
    page.get_by_role("combobox", name="Break results down by").click()
    page.get_by_role("option", name="region", exact=True).click()
    # on a busy machine the rerun the choice asks for can start after wait_for_app's 1.5 s of idle: wait for its
    # section first (a timeout fails the test as the assertion below would)
    page.get_by_text("Results by region").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid=stException]").count() == 0
    body = page.inner_text("[data-testid=stMain]")
    assert "Results by region" in body
    assert "Cochran's Q" in body and "across region" in body
    assert "per-segment tests" in body and "fewer than 30 observations in an arm is too small to read" in body
    assert wait_for_charts(page, charts + 1) >= charts + 1  # the forest plot by region
    section = body[body.index("Results by region") :]
    assert section.index("Cochran's Q") < section.index("per-segment tests")  # Q before the per-value lifts
    page.get_by_text("Results by region").scroll_into_view_if_needed()
    screenshot(page, "abtest_segments")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Analysis (JSON)").click()
    path = tmp_path / "abtest.json"
    download_info.value.save_as(path)
    doc = json.loads(path.read_text())
    assert doc["segment_by"] == "region" and doc["segment_adjustment"]["min_n"] == 30
    assert {r["value"] for r in doc["segments"]} == {"east", "north", "south", "west"}
    assert all(h["text"] in body for h in doc["heterogeneity"])
