"""Shared fixtures: an empty store in a temp dir and small explicit files."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.sources.store import Store

ROOT = Path(__file__).resolve().parents[1]

PREDICTIONS_HEADER = "trace_id,ts,model_version,prediction,score,amount,country,age_band"
GOOD = f"""
{PREDICTIONS_HEADER}
p1,2026-01-01 10:00:00,v1,1,0.91,10.5,DE,18-25
p2,2026-01-01T11:00:00+02:00,v1,0,0.12,,FR,26-35
p3,2026-01-02 09:30:00,v2,1,0.77,7.25,FR,
"""


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """With ``-n N --dist loadgroup`` (pyproject's addopts), deal whole modules to the workers
    (tests/helpers/xdist_units.py says why); any other ``--dist`` keeps xdist's own scheduler."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.helpers.xdist_units import ModuleScheduling

    return ModuleScheduling(config, log)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict]:
    """The default demo scenario (300k predictions, 90 days, seed 7) and its ground truth, built once per
    test process. Analyses may record their runs in it; a test that needs a pristine store copies it."""
    from workbench.demo.scenario import Scenario, build_demo

    store = Store(tmp_path_factory.mktemp("demo") / "workbench.duckdb")
    truth = build_demo(store, Scenario())
    return store, truth


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    """An empty store (the file does not exist until the first write)."""
    return Store(tmp_path / "store.duckdb", lock_timeout_s=2)


def write(path: Path, text: str) -> Path:
    """Write ``text`` (dedented lines) to ``path`` and return it."""
    path.write_text("\n".join(line.strip() for line in text.strip().splitlines()) + "\n", encoding="utf-8")
    return path


def counts(store: Store) -> dict[str, int]:
    """Row counts of every store table."""
    with store.connect(read_only=True) as con:
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("predictions", "feedback", "quarantine", "ingests")
        }


@pytest.fixture()
def navigation_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make AppTest rerun the entrypoint like the server does once st.navigation has run.

    AppTest resets ``PagesManager.uses_pages_directory`` before every run, and because ``pages/``
    exists it then runs the last page's file alone (the pre-st.navigation behaviour), without
    the entrypoint's sidebar. The server sets the flag to False on the first st.navigation call.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
