"""Browser walk of the home page against a freshly built demo store."""

import pytest

from tests.e2e.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def test_home_page_shows_the_demo_store_summary(page, app_url):
    page.goto(app_url)
    wait_for_app(page)
    assert page.locator("[data-testid=stException]").count() == 0
    body = page.inner_text("[data-testid=stMain]")
    assert "20,000" in body  # predictions in the demo store
    assert "Model versions" in body
    assert page.locator(".js-plotly-plot").count() >= 2
    assert screenshot(page, "home").stat().st_size > 10_000


def test_time_filter_is_bound_to_the_url(page, app_url):
    page.goto(f"{app_url}/?versions=v2")
    wait_for_app(page)
    assert page.locator("[data-testid=stException]").count() == 0
    body = page.inner_text("[data-testid=stMain]")
    assert "the selected window" in body
    screenshot(page, "home_filtered_v2")
