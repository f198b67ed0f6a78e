"""The router: every page runs inside app.py's navigation and shared sidebar, even as a deep link."""

import pytest

from tests.e2e.conftest import screenshot, serve, wait_for_app

pytestmark = pytest.mark.e2e


def test_a_deep_link_opened_first_after_start_gets_the_shared_sidebar(page, demo_db):
    # A fresh server: Streamlit starts in its legacy pages/ mode until st.navigation first runs.
    with serve(demo_db) as url:
        page.goto(f"{url}/gate")
        wait_for_app(page)
        sidebar = page.inner_text("[data-testid=stSidebar]")
        screenshot(page, "router_deep_link")
    assert "Data source" in sidebar  # the shared sidebar of app.py
    assert "Retrain gate" in sidebar and "Home" in sidebar  # page titles from st.navigation
    assert "app" not in sidebar.split()  # not the legacy file-name navigation (app, gate, home)
    assert "Curated retraining set" in page.inner_text("[data-testid=stMain]")
