"""The gate page's typed export folder is confined to the store's folder and $WORKBENCH_EXPORT_ROOTS (a visitor of
a shared app must not write wherever the server can), and $WORKBENCH_READ_ONLY is read as 1, true, yes or on (as
the rest of the app reads it)."""

from __future__ import annotations

import os

import pytest

from workbench.core.errors import InputError
from workbench.gate.view import EXPORT_ROOTS_ENV, READ_ONLY_ENV, confined_folder, export_roots, read_only
from workbench.sources.store import Store


@pytest.fixture()
def data(tmp_path, monkeypatch):
    monkeypatch.delenv(EXPORT_ROOTS_ENV, raising=False)
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def test_the_store_folder_is_the_default_root_and_a_relative_path_starts_there(data):
    roots = export_roots(Store(data / "workbench.duckdb"))
    assert roots == [data.resolve()]
    assert confined_folder("exports", roots) == data.resolve() / "exports"
    assert confined_folder(" exports/2026 ", roots) == data.resolve() / "exports" / "2026"
    assert confined_folder(str(data / "x"), roots) == data.resolve() / "x"
    assert confined_folder(".", roots) == data.resolve()


@pytest.mark.parametrize("typed", ["../elsewhere", "exports/../../elsewhere", "/tmp", "/", "/etc/cron.d"])
def test_a_path_outside_the_roots_is_refused_in_one_line(data, typed):
    with pytest.raises(InputError, match=r"^refused: .* is outside the folders this app may write to") as caught:
        confined_folder(typed, export_roots(Store(data / "workbench.duckdb")))
    assert "\n" not in str(caught.value) and str(data.resolve()) in str(caught.value)


def test_a_symlink_out_of_the_root_is_refused(data, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (data / "link").symlink_to(outside, target_is_directory=True)
    roots = export_roots(Store(data / "workbench.duckdb"))
    with pytest.raises(InputError, match="refused: link"):
        confined_folder("link", roots)
    with pytest.raises(InputError, match="refused"):
        confined_folder("link/sub", roots)


def test_a_sibling_whose_name_starts_like_the_root_is_outside(data, tmp_path):
    (tmp_path / "data-other").mkdir()
    with pytest.raises(InputError, match="refused"):
        confined_folder(str(tmp_path / "data-other"), export_roots(Store(data / "workbench.duckdb")))


def test_export_roots_add_folders(data, tmp_path, monkeypatch):
    extra, more = tmp_path / "exports", tmp_path / "shared"
    monkeypatch.setenv(EXPORT_ROOTS_ENV, os.pathsep.join([str(extra), "", f" {more} "]))
    roots = export_roots(Store(data / "workbench.duckdb"))
    assert roots == [data.resolve(), extra.resolve(), more.resolve()]
    assert confined_folder(str(more / "run-1"), roots) == more.resolve() / "run-1"
    with pytest.raises(InputError, match="refused"):
        confined_folder(str(tmp_path / "other"), roots)


def test_an_empty_folder_is_refused(data):
    with pytest.raises(InputError, match="type a folder"):
        confined_folder("  ", export_roots(Store(data / "workbench.duckdb")))


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), (" TRUE ", True), ("yes", True),
                                                 ("0", False), ("", False), ("false", False)])  # fmt: skip
def test_read_only_reads_1_or_true(monkeypatch, value, expected):
    monkeypatch.setenv(READ_ONLY_ENV, value)
    assert read_only() is expected


def test_the_composition_chart_defaults_to_the_attribute_whose_audit_failed():
    from workbench.gate.view import failed_attribute
    from workbench.sources.evidence import AnalysisRun

    failed = AnalysisRun("fairness", "2026-03-01T00:00:00Z", "fail", {"sensitive": ["region", "age_band"]})
    passed = AnalysisRun("fairness", "2026-03-01T00:00:00Z", "pass", {"sensitive": ["region"]})
    assert failed_attribute({"fairness": failed}, ["age_band", "region"]) == "region"
    assert failed_attribute({"fairness": passed}, ["age_band", "region"]) is None
    assert failed_attribute({"fairness": None}, ["age_band", "region"]) is None
    assert failed_attribute({"fairness": failed}, ["country"]) is None
