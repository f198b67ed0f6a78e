"""Every page, opened on a store that does not exist yet, says how to make one instead of failing."""

from __future__ import annotations

import pytest

from tests.helpers.app_pages import routed_page
from workbench.app import ui


@pytest.mark.parametrize("script", [script for script, *_ in ui.PAGES if not script.endswith("home.py")])
def test_a_page_without_a_store_says_how_to_build_one(script, tmp_path, monkeypatch, navigation_app):
    app = routed_page(tmp_path / "missing.duckdb", script, monkeypatch, timeout=60)
    assert not app.exception
    assert any("No store yet" in i.value for i in app.info)
    assert not (tmp_path / "missing.duckdb").exists()
