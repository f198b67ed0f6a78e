"""Every read-side command runs on a lake folder from the command line, writes nothing there, and gives the
store's verdict (the gate's evidence is not recorded on a lake: it is read in place)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

COMMANDS = {
    "drift": ["drift", "--reference", "first:20d", "--current", "last:7d", "--no-multivariate"],
    "fairness": ["fairness", "--sensitive", "region"],
    "check": ["check", "--rules", str(ROOT / "rules.example.toml")],
    "abtest": ["abtest"],
}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("lake-cli")
    db, lake = folder / "w.duckdb", folder / "lake"
    out = run("demo", "--rows", "4000", "--days", "40", "--seed", "5", "--db", str(db), "--lake", str(lake))
    assert out.returncode == 0, out.stderr
    return db, lake


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_on_a_lake_gives_the_store_s_verdict_and_writes_nothing(pair, command: str) -> None:
    db, lake = pair
    before = sorted((p, p.stat().st_mtime_ns) for p in lake.rglob("*"))
    on_lake = run("--source", f"lake:{lake}", *COMMANDS[command], "--json")
    on_store = run("--source", str(db), *COMMANDS[command], "--json")
    assert on_lake.returncode in (0, 1), on_lake.stderr
    assert on_lake.returncode == on_store.returncode
    lake_doc, store_doc = json.loads(on_lake.stdout), json.loads(on_store.stdout)
    key = "verdict_word" if command == "abtest" else "verdict"
    assert lake_doc[key] == store_doc[key]
    assert sorted((p, p.stat().st_mtime_ns) for p in lake.rglob("*")) == before
