"""Browser walk of the Drift page: verdict, charts, both downloads (JSON without NaN, HTML without raw rows)."""

import json
import re

import pytest

from tests.e2e.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def test_drift_page_shows_the_verdict_and_downloads_both_reports(page, app_url, tmp_path):
    page.goto(f"{app_url}/drift")
    wait_for_app(page, timeout_ms=120_000)
    assert page.locator("[data-testid=stException]").count() == 0
    body = page.inner_text("[data-testid=stMain]")
    assert "dataset drift: " in body and "features drifted" in body and "the rule is ≥" in body  # one verdict
    for section in ("All statistics", "Distributions", "Over time", "Performance", "covariate shift only"):
        assert section in body
    assert page.locator(".js-plotly-plot").count() >= 5  # PSI bars, distribution, heatmap, lines, performance

    with page.expect_download() as json_info:
        page.get_by_role("button", name="Download drift report (JSON)").click()
    report_path = tmp_path / "drift_report.json"
    json_info.value.save_as(report_path)
    text = report_path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    report = json.loads(text)
    assert report["summary"]["n_features"] == 11
    assert {"amount", "latency_ms", "tenure_days", "device"} <= set(report["summary"]["drifted"])
    assert report["over_time"]["values"] and report["performance"]["chunks"]

    with page.expect_download() as html_info:
        page.get_by_role("button", name="Download drift report (HTML)").click()
    html_path = tmp_path / "drift_report.html"
    html_info.value.save_as(html_path)
    html = html_path.read_text()
    assert report["verdict_text"] in html
    data = re.sub(r"<script>/\*\*\s*\* plotly\.js.*?</script>", "", html, count=1, flags=re.S)  # the library
    assert len(data) < len(html) - 3_000_000  # the inlined plotly.js was found and left out of the next check
    assert "tr-0" not in data and "u-1" not in data  # no trace or unit ids in the report's own data: aggregates
    assert "<script src=" not in html and len(html) > 3_000_000  # self-contained: plotly.js inline
    screenshot(page, "drift")
