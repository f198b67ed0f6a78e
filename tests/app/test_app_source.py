"""AppTest of the sidebar's data source: a failed upload keeps the data shown, typed store paths are
confined to the data folders, and the read-only switch stops every write."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import GOOD, ROOT
from tests.helpers.demo_stores import copy_demo
from workbench.demo.scenario import Scenario
from workbench.sources.store import Store

APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    target = tmp_path_factory.mktemp("source") / "workbench.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=4_000, days=20), target)[0]


@pytest.fixture()
def app(demo_store, monkeypatch, navigation_app):
    monkeypatch.setenv("WORKBENCH_DB", str(demo_store.path))
    monkeypatch.delenv("WORKBENCH_DATA_ROOTS", raising=False)
    monkeypatch.delenv("WORKBENCH_READ_ONLY", raising=False)
    monkeypatch.chdir(ROOT)
    return AppTest.from_file(APP, default_timeout=60)


def metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def upload(app: AppTest, name: str, content: bytes) -> None:
    app.sidebar.radio(key="source").set_value("Uploaded files").run()
    app.sidebar.get("file_uploader")[0].set_value([(name, content, "text/csv")])
    app.sidebar.form_submit_button[0].click().run()


def test_a_binary_upload_says_not_a_text_file_and_keeps_the_data_shown(app):
    app.run()
    before = metrics(app)["Predictions"]
    upload(app, "garbage.csv", bytes(range(256)) * 40)
    assert not app.exception
    errors = [e.value for e in app.sidebar.error]
    assert errors == ["Upload not ingested: garbage.csv: not a text file (a CSV file is text); is it the right file?"]
    assert metrics(app)["Predictions"] == before == "4,000"  # the previous source stays selected and usable
    assert app.sidebar.multiselect(key="versions") is not None  # the filters are still there


def test_a_good_upload_after_a_failed_one_is_shown(app):
    app.run()
    upload(app, "garbage.csv", b"\x00\x01\x02" * 100)
    upload(app, "mine.csv", (GOOD.strip() + "\n").encode())
    assert not app.exception
    assert metrics(app)["Predictions"] == "3"


def test_a_store_path_outside_the_data_folders_is_refused(app, tmp_path):
    outside = tmp_path / "elsewhere.duckdb"
    Store(outside).connect(read_only=False).__enter__()  # an existing store the server could open
    app.run()
    app.sidebar.radio(key="source").set_value("Another DuckDB file").run()
    app.sidebar.text_input(key="db_file").input(str(outside)).run()
    assert not app.exception
    assert "is outside the folders this app may read" in app.sidebar.error[0].value
    assert metrics(app)["Predictions"] == "4,000"  # still the default store


def test_a_store_path_inside_the_data_folders_opens(app, demo_store):
    app.run()
    app.sidebar.radio(key="source").set_value("Another DuckDB file").run()
    app.sidebar.text_input(key="db_file").input(str(demo_store.path.parent / ".." / demo_store.path.parent.name /
                                                    demo_store.path.name)).run()  # fmt: skip
    assert not app.exception and not app.sidebar.error
    assert metrics(app)["Predictions"] == "4,000"


def test_read_only_turns_uploads_off_and_writes_nothing(app, demo_store, monkeypatch):
    monkeypatch.setenv("WORKBENCH_READ_ONLY", "1")
    before = demo_store.path.stat().st_mtime_ns, demo_store.path.read_bytes()
    app.run()
    app.sidebar.radio(key="source").set_value("Uploaded files").run()
    assert not app.exception
    captions = " ".join(c.value for c in app.sidebar.caption)
    assert "Uploads are off: this app runs read-only." in captions
    assert "Read-only ($WORKBENCH_READ_ONLY)" in captions
    for page in ("pages/drift.py", "pages/fairness.py", "pages/abtest.py"):  # each would record its run
        app.switch_page(page).run()
        assert not app.exception, page
    assert (demo_store.path.stat().st_mtime_ns, demo_store.path.read_bytes()) == before


def test_a_lake_folder_is_read_in_place(app, demo_store):
    from workbench.ingest.lake import export_lake

    lake = export_lake(demo_store, demo_store.path.parent / "lake")
    app.run()
    app.sidebar.radio(key="source").set_value("Lake folder").run()
    app.sidebar.text_input(key="lake_dir").input(str(lake)).run()
    assert not app.exception and not app.sidebar.error
    assert metrics(app)["Predictions"] == "4,000"
    app.switch_page("pages/drift.py").run()
    assert not app.exception
