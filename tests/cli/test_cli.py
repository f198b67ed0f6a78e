"""The CLI contract: --db and --json on every command, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import GOOD, ROOT, write


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("cli") / "w.duckdb"
    out = run("demo", "--rows", "3000", "--days", "30", "--seed", "11", "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    return db, json.loads(out.stdout)


def test_demo_json_names_the_store_and_its_truth(demo_db):
    db, document = demo_db
    assert document["db"] == str(db)
    assert document["predictions"] == 3000 and document["days"] == 30 and document["seed"] == 11
    assert document["ground_truth"] == str(db.parent / "demo" / "ground_truth.json")


def test_info_json_summarises_the_store(demo_db):
    db, truth = demo_db
    out = run("info", "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["predictions"] == 3000
    assert info["feedback"] == truth["feedback_rows"]
    assert info["orphan_feedback"] == truth["orphan_feedback"]
    assert [v["model_version"] for v in info["model_versions"]] == ["v1", "v2"]
    assert sum(v["n"] for v in info["model_versions"]) == 3000
    assert 0 < info["coverage_labelled"] < info["coverage_any"] <= 1
    assert info["sensitive"] == ["age_band", "region"]
    assert info["first_ts"].startswith("2026-01-01")


def test_info_reads_the_store_from_the_environment(demo_db):
    db, _ = demo_db
    import os

    out = run("info", "--json", env={**os.environ, "WORKBENCH_DB": str(db)})
    assert out.returncode == 0 and json.loads(out.stdout)["path"] == str(db)


def test_info_text_is_readable(demo_db):
    out = run("info", "--db", str(demo_db[0]))
    assert "predictions  3,000" in out.stdout and "coverage" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("info", "--db", "/nonexistent/x.duckdb"), "error: no store at /nonexistent/x.duckdb"),
        (("demo", "--rows", "abc"), "usage error"),
        (("ingest",), "usage error: Missing parameter"),
        (("frobnicate",), "usage error: No such command"),
        (("demo", "--rows", "10", "--db", "/tmp/never-made.duckdb"), "error: demo needs at least 100 rows"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    out = run(*args)
    assert out.returncode == 2
    assert out.stderr.startswith(message)
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_ingest_with_a_bad_table_name_is_refused(tmp_path):
    out = run("ingest", str(write(tmp_path / "p.csv", GOOD)), "--table", "preds", "--db", str(tmp_path / "s.duckdb"))
    assert out.returncode == 2 and "--table must be predictions or feedback" in out.stderr


def test_a_settings_file_changes_an_analysis_and_a_bad_one_names_its_line(demo_db, tmp_path):
    db, _ = demo_db
    settings = tmp_path / "settings.toml"
    settings.write_text('[fairness]\nreference_group = "south"\nbootstrap_resamples = 50\n')
    out = run("--settings", str(settings), "fairness", "--sensitive", "region", "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["reference_group"] == "south"
    settings.write_text("[fairness]\n\nmax_ration = 2\n")
    out = run("--settings", str(settings), "fairness", "--sensitive", "region", "--db", str(db), "--json")
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {settings} line 3: [fairness] has no setting 'max_ration' (known: verdict_metrics")
    out = run("--settings", str(tmp_path / "missing.toml"), "info", "--db", str(db))
    assert out.returncode == 2 and "settings file" in out.stderr and "does not exist" in out.stderr


def test_help_shows_the_settings_sections_with_their_brackets():
    out = run("--help")
    assert out.returncode == 0
    assert "([drift], [abtest], [fairness]," in out.stdout and "(, , , )" not in out.stdout


def test_a_bad_engine_memory_setting_is_one_line(demo_db):
    env = {**os.environ, "WORKBENCH_DUCKDB_MEMORY": "lots"}
    out = run("info", "--db", str(demo_db[0]), env=env)
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        == "error: $WORKBENCH_DUCKDB_MEMORY must be a size from 64MB up, such as 1GiB or 4GB, not 'lots'"
    )
