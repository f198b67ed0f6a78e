"""Browser walk of the A/B test page: verdict and SRM line, charts, JSON download, the calculator."""

import json

import pytest

from tests.e2e.conftest import screenshot, wait_for_app, wait_for_charts

pytestmark = pytest.mark.e2e


def test_abtest_shows_the_verdict_downloads_json_and_runs_the_calculator(page, app_url, tmp_path):
    page.goto(f"{app_url}/abtest")
    wait_for_app(page)
    assert page.locator("[data-testid=stException]").count() == 0
    body = page.inner_text("[data-testid=stMain]")
    assert "SRM ok" in body
    assert "Results per metric and variant" in body
    assert "not 1 − p" in body
    assert wait_for_charts(page, 4) >= 4
    screenshot(page, "abtest")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Analysis (JSON)").click()
    path = tmp_path / "abtest.json"
    download_info.value.save_as(path)
    doc = json.loads(path.read_text())
    assert doc["control"] == "champion" and doc["variants"] == ["challenger"]
    assert doc["srm"]["ok"] is True
    assert doc["verdict"] in body

    page.get_by_text("Calculator (typed-in results)").click()
    wait_for_app(page)
    body = page.inner_text("[data-testid=stMain]")
    assert page.locator("[data-testid=stException]").count() == 0
    assert "+1.5 pts" in body  # the verdict on the default table (3,000 vs 3,150 of 10,000)
    screenshot(page, "abtest_calculator")


def test_shadow_mode_reads_a_file_of_scored_pairs(page, app_url, tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 3000)
    pairs = pd.DataFrame({"v1": np.where(rng.random(3000) < 0.80, y, 1 - y),
                          "v2": np.where(rng.random(3000) < 0.86, y, 1 - y), "y": y})  # fmt: skip
    path = tmp_path / "pairs.csv"
    pairs.to_csv(path, index=False)
    page.goto(f"{app_url}/abtest")
    wait_for_app(page)
    page.get_by_text("Shadow mode (same requests)").click()
    wait_for_app(page)
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(path))
    wait_for_app(page)
    body = page.inner_text("[data-testid=stMain]")
    assert page.locator("[data-testid=stException]").count() == 0
    assert "Challenger more accurate" in body and "McNemar" in body  # the label column "y" is picked by its name
    assert wait_for_charts(page, 1) == 1
    screenshot(page, "abtest_shadow")
