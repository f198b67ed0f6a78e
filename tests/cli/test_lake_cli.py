"""Every read-side command runs on a lake folder from the command line, writes nothing there, and gives the
store's verdict (the gate's evidence is not recorded on a lake: it is read in place)."""

from __future__ import annotations

import json
import os
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


def test_a_lake_with_repeats_tells_what_the_ingest_of_its_files_tells(pair, tmp_path) -> None:
    """`workbench validate` names the rows the ingest's repeat rule leaves out, `info` counts them in the
    quarantine as the store does after `workbench ingest` of the same files in the same order."""
    from tests.ingest.test_lake import EXPECTED_REPEATS, write_repeats_lake
    from workbench.sources.store import Store

    db, _ = pair
    lake = write_repeats_lake(Store(db), tmp_path / "lake")
    env = {**os.environ, "WORKBENCH_DB": str(tmp_path / "data" / "workbench.duckdb")}  # the cache goes there
    files = [str(f) for table in ("predictions", "feedback") for f in sorted((lake.path / table).glob("*.parquet"))]
    ingested = tmp_path / "ingested.duckdb"
    out = run_with(env, "ingest", *files, "--roles", str(lake.path / "roles.toml"), "--db", str(ingested), "--json")
    assert out.returncode == 0, out.stderr
    ingest = json.loads(out.stdout)
    text = run_with(env, "--source", f"lake:{lake.path}", "validate")
    assert text.returncode == 0, text.stderr
    assert "predictions: 150 × trace_id already in store with other values" in text.stdout
    assert "predictions: 260 identical copies counted once (the ingest's duplicates)" in text.stdout
    assert sum(EXPECTED_REPEATS["duplicates"].values()) == ingest["duplicates"]
    assert EXPECTED_REPEATS["reasons"]["predictions"] == ingest["reasons"]
    on_lake, on_store = (json.loads(run_with(env, "--source", source, "info", "--json").stdout)
                         for source in (f"lake:{lake.path}", str(ingested)))  # fmt: skip
    for document in (on_lake, on_store):
        document.pop("path"), document.pop("ingests")
    assert on_lake == on_store
    assert on_lake["predictions"] == 4000 and on_lake["quarantined"] == 180
    # validate's feedback line: the coverage and orphans info then read from the snapshot's kept numbers
    assert (f"feedback: {on_lake['orphan_feedback']:,} rows name no prediction (orphans); predictions with feedback "
            f"{100 * on_lake['coverage_any']:.1f}%, with a label {100 * on_lake['coverage_labelled']:.1f}%"
            ) in text.stdout  # fmt: skip
    assert on_lake["coverage_any"] > 0.5


def run_with(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "workbench.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
