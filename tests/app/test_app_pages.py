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


def test_a_page_that_runs_out_of_duckdb_memory_says_which_setting_to_raise(monkeypatch):
    """A query beyond the analysis' memory limit (an exact quantile cannot spill) is one line naming the setting and
    its value, not a traceback."""
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        import duckdb

        from workbench.app.ui import user_errors

        with user_errors():
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 64.0 MiB\nmore")

    monkeypatch.setenv("WORKBENCH_DUCKDB_MEMORY", "2GB")
    at = AppTest.from_function(page).run()
    assert not at.exception and len(at.error) == 1
    assert at.error[0].value == (
        "database: Out of Memory Error: failed to allocate data of size 64.0 MiB (an analysis' DuckDB may use 2GB: "
        "set $WORKBENCH_DUCKDB_MEMORY higher, e.g. 4GB)"
    )
