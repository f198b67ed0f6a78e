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


def test_the_first_click_on_the_sidebar_s_data_source_takes(page, app_url):
    """A new user opens the app at "/" and picks another data source once: the choice takes at the first click
    (with the sidebar's widgets before the navigation, Streamlit 1.67 dropped it and a second click was needed)."""
    page.goto(app_url)
    wait_for_app(page)
    group = page.get_by_role("radiogroup", name="Data source")
    group.locator("label").filter(has_text="Lake folder").click()
    wait_for_app(page)
    page.get_by_role("textbox", name="Lake folder").wait_for(timeout=10_000)
    assert group.get_by_role("radio", name="Lake folder").is_checked()
    screenshot(page, "home_lake_source")
    group.locator("label").filter(has_text="Default store").click()
    wait_for_app(page)
    assert group.get_by_role("radio", name="Default store").is_checked()
    assert "20,000" in page.inner_text("[data-testid=stMain]")
