"""Open a page of the app as the server does: the router (app.py) runs first, then the page, on a given store."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def routed_page(db: Path, script: str, monkeypatch: pytest.MonkeyPatch, timeout: float = 90) -> AppTest:
    """``script`` (e.g. ``pages/gate.py``) after one run of app.py on the store at ``db`` (``$WORKBENCH_DB``).

    Callers also request the ``navigation_app`` fixture, which keeps AppTest on the router between runs.
    """
    monkeypatch.setenv("WORKBENCH_DB", str(db))
    monkeypatch.chdir(ROOT)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    app.run()
    app.switch_page(script).run()
    return app
