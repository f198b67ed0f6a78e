"""Two processes recording decisions at once, ten times each through the CLI's `decide`, all land in order and
the chain verifies, with its key (moved here from tests/gate/test_decisions.py, which had one pair)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.conftest import ROOT
from tests.gate.test_decisions import KEY
from workbench.gate.decisions import KEY_ENV, KEY_FILE_ENV, decide, read_decisions, verify
from workbench.sources.store import Store

ROUNDS = 10
DECIDER = """
import pathlib, sys, time
from workbench.cli import app
folder, db, name = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
(folder / f"ready-{name}").touch()
while not (folder / "go").exists():  # both start together
    time.sleep(0.005)
for i in range(int(sys.argv[4])):
    app(["decide", "--decision", "defer", "--reviewer", f"{name}-{i}", "--rationale", f"parallel {i}", "--db", db],
        standalone_mode=False)
"""


def test_two_processes_deciding_at_once_ten_times_all_land_in_order_and_verify(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    store = Store(tmp_path / "s.duckdb")
    decide(store, "defer", "seed", "first")
    env = {**os.environ, KEY_ENV: KEY.decode()}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DECIDER, str(tmp_path), str(store.path), name, str(ROUNDS)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("r0", "r1")
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{name}").exists() for name in ("r0", "r1")):
        assert all(p.poll() is None for p in procs) and time.monotonic() < deadline
        time.sleep(0.01)
    (tmp_path / "go").touch()
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    entries = read_decisions(store)
    assert [d.seq for d in entries] == list(range(1, 2 * ROUNDS + 2))
    assert sorted(d.reviewer for d in entries[1:]) == sorted(f"r{p}-{i}" for p in range(2) for i in range(ROUNDS))
    for name in ("r0", "r1"):  # each process's own decisions keep their order
        assert [d.reviewer for d in entries if d.reviewer.startswith(name)] == [f"{name}-{i}" for i in range(ROUNDS)]
    check = verify(store, key=KEY)
    assert (check.ok, check.macs, check.unkeyed) == (True, 2 * ROUNDS + 1, 0)
