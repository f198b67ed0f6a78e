"""Browser walk of the Retrain gate: preview, download the retraining set, record a decision."""

import hashlib
import json

import pytest

from tests.e2e.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def test_gate_downloads_the_set_and_records_a_decision(page, app_url, tmp_path):
    page.goto(f"{app_url}/gate")
    wait_for_app(page)
    assert page.locator("[data-testid=stException]").count() == 0
    assert "Curated retraining set" in page.inner_text("[data-testid=stMain]")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download retraining set").click()
    data = tmp_path / "set.parquet"
    download_info.value.save_as(data)
    with page.expect_download() as manifest_info:
        page.get_by_role("button", name="Download manifest.json").click()
    manifest_path = tmp_path / "manifest.json"
    manifest_info.value.save_as(manifest_path)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert manifest["rows"] > 1000

    page.get_by_label("Reviewer").fill("ana")
    page.get_by_label("Rationale").fill("browser walk: defer until the A/B test ends")
    page.get_by_role("radiogroup", name="Decision").get_by_text("defer", exact=True).click()
    page.get_by_role("button", name="Record decision").click()
    wait_for_app(page)
    body = page.inner_text("[data-testid=stMain]")
    assert "recorded: defer by ana" in body
    assert "Hash chain intact" in body
    screenshot(page, "gate")
