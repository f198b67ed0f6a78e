"""Browser walk of the Fairness page: the verdict, an intersectional audit, the JSON and CSV downloads."""

import json

import pytest

from tests.e2e.conftest import screenshot, wait_for_app, wait_for_charts

pytestmark = pytest.mark.e2e


def test_fairness_page_audits_regions_and_downloads_the_audit(page, app_url, tmp_path):
    page.goto(f"{app_url}/fairness")
    wait_for_app(page)
    assert page.locator("[data-testid=stException]").count() == 0
    # a deep link first reruns through the router, and the audit runs inside st.status: wait for the page's
    # last element, not only for the script state
    page.get_by_role("button", name="Groups (CSV)").wait_for(timeout=60_000)
    wait_for_app(page)
    body = page.inner_text("[data-testid=stMain]")
    assert "FAIL" in body and "FPR for region=south" in body
    assert wait_for_charts(page, 1) >= 1
    wait_for_app(page)
    screenshot(page, "fairness")

    with page.expect_download() as json_info:
        page.get_by_role("button", name="Audit (JSON)").click()
    path = tmp_path / "fairness.json"
    json_info.value.save_as(path)
    document = json.loads(path.read_text())
    assert document["verdict"] == "fail" and document["reference_group"] == "north"
    assert {g["group"] for g in document["groups"]} == {"east", "north", "south", "west"}
    with page.expect_download() as csv_info:
        page.get_by_role("button", name="Groups (CSV)").click()
    csv_path = tmp_path / "groups.csv"
    csv_info.value.save_as(csv_path)
    assert csv_path.read_text().startswith("group,region,status")

    page.get_by_role("tab", name="Gap over time").click()
    page.get_by_role("tab", name="Champion vs challenger").click()
    wait_for_app(page)
    assert page.locator("[data-testid=stException]").count() == 0
    screenshot(page, "fairness_versions")
