"""Every page as a new user meets it: on the demo store, on a store with predictions and no feedback yet,
and with no store at all, each page renders without an exception, a console error or a request to
another host (the `page` fixture fails on those)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.e2e.conftest import ROOT, screenshot, serve, wait_for_app

pytestmark = pytest.mark.e2e

PAGES = {"": "home", "stream": "stream", "drift": "drift", "abtest": "abtest", "fairness": "fairness",
         "quality": "quality", "gate": "gate"}  # fmt: skip


@pytest.fixture(scope="module")
def no_feedback_db(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's predictions alone, ingested into a fresh store (what a team has before feedback arrives)."""
    folder = tmp_path_factory.mktemp("no-feedback")
    export = folder / "predictions.parquet"
    with duckdb.connect(str(demo_db), read_only=True) as con:
        columns = [r[0] for r in con.execute("DESCRIBE predictions").fetchall()]
        keep = ", ".join(f'"{c}"' for c in columns if not c.startswith("__") and c != "ingest_id")
        con.execute(f"COPY (SELECT {keep} FROM predictions) TO '{export}' (FORMAT parquet)")
    db = folder / "workbench.duckdb"
    roles = folder / "roles.toml"
    roles.write_text('[predictions]\nsensitive = ["age_band", "region"]\n', encoding="utf-8")
    subprocess.run([sys.executable, "-m", "workbench.cli", "ingest", str(export), "--roles", str(roles), "--db",
                    str(db)], check=True, cwd=ROOT, capture_output=True)  # fmt: skip
    return db


def visit(page: object, url: str, path: str) -> str:
    page.goto(f"{url}/{path}")
    wait_for_app(page)
    assert page.locator("[data-testid=stException]").count() == 0, path
    return page.inner_text("[data-testid=stMain]")


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_of_the_demo_store_is_clean(page, app_url, path):
    assert visit(page, app_url, path)


def test_every_page_without_feedback_says_so_and_draws_no_broken_chart(page, no_feedback_db):
    with serve(no_feedback_db) as url:
        for path, name in PAGES.items():
            body = visit(page, url, path)
            assert body, path
            screenshot(page, f"no_feedback_{name}")
        page.goto("about:blank")  # leave the app before its server stops (else its reconnect logs an error)


def test_every_page_without_a_store_says_how_to_make_one(page, tmp_path):
    with serve(tmp_path / "missing.duckdb") as url:
        for path, name in PAGES.items():
            body = visit(page, url, path)
            assert "workbench demo" in body or "No store" in body or "no store" in body, path
            screenshot(page, f"no_store_{name}")
        page.goto("about:blank")
