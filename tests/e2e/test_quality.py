"""Browser walk of the Model quality page: the verdict and its charts after the concept drift, the JSON download,
and a window before the concept drift that holds."""

import json

import pytest

from tests.e2e.conftest import screenshot, wait_for_app, wait_for_charts

pytestmark = pytest.mark.e2e


def test_quality_page_shows_the_drop_downloads_the_report_and_holds_before_the_concept_drift(page, app_url, tmp_path):
    page.goto(f"{app_url}/quality")
    wait_for_app(page)
    page.get_by_role("button", name="Chunks (CSV)").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid=stException]").count() == 0
    body = page.inner_text("[data-testid=stMain]")
    assert "DROPPED" in body and "quality dropped:" in body and "outside its estimate's band" in body
    assert wait_for_charts(page, 7) == 7  # verdict, two confusion matrices, ROC, PR, reliability, over time
    wait_for_app(page)
    screenshot(page, "quality")

    with page.expect_download() as info:
        page.get_by_role("button", name="Report (JSON)").click()
    path = tmp_path / "quality.json"
    info.value.save_as(path)
    document = json.loads(path.read_text())
    assert document["verdict_word"] == "dropped" and {v["model_version"] for v in document["versions"]} == {"v1", "v2"}

    window = page.get_by_role("textbox", name="Window (START..END, last:30d, all)")
    window.fill("2026-02-01..2026-03-01")
    window.press("Enter")
    page.get_by_text("HOLDS").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid=stException]").count() == 0
    screenshot(page, "quality_holds")
