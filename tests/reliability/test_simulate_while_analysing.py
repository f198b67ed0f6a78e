"""A simulator appending while analyses read: every read either succeeds with counts that lie between the counts
just before and just after it (the writer only appends), or gets the one-line busy error; never a traceback.
(tests/demo/test_simulate.py holds the finer promise: a reader never sees half a batch.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from workbench.cli import main
from workbench.core.errors import StoreBusyError
from workbench.demo.scenario import Scenario, build_demo
from workbench.fairness.audit import audit_store
from workbench.sources.store import Store
from workbench.sources.store_queries import store_summary

READ_FOR_AT_MOST_S = 40.0


def predictions(store: Store) -> int:
    with store.connect(read_only=True) as con:
        return con.execute("SELECT count(*) FROM predictions").fetchone()[0]


@pytest.mark.slow
def test_analyses_beside_a_simulator_succeed_or_say_busy_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WORKBENCH_READ_ONLY", raising=False)
    store = Store(tmp_path / "live.duckdb")
    build_demo(store, Scenario(rows=2_000, days=30))
    env = {**os.environ, "WORKBENCH_DB": str(store.path)}
    env.pop("WORKBENCH_READ_ONLY", None)
    writer = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "simulate", "--rate", "400", "--interval", "0.1", "--speed", "3600",
         "--duration", "120", "--seed", "3", "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    store_summary(store), audit_store(store, ["region"])  # warm while the writer starts: imports are not the test's
    patient, impatient = Store(store.path, lock_timeout_s=60), Store(store.path, lock_timeout_s=0.02)
    outcomes, seen, cli_runs = {"ok": 0, "busy": 0}, set(), []
    initial = predictions(patient)
    try:
        deadline = time.monotonic() + 60
        while predictions(patient) == initial:  # the writer has started appending
            assert writer.poll() is None, writer.communicate()[1]
            assert time.monotonic() < deadline, "the simulator wrote nothing within 60 s"
            time.sleep(0.1)
        deadline = time.monotonic() + READ_FOR_AT_MOST_S
        # until two reads saw different batches (a fixed duration could end first on a busy machine)
        while len(seen) < 2 or not cli_runs:
            assert writer.poll() is None, writer.communicate()[1]
            assert time.monotonic() < deadline, f"the reads did not overlap the writer: {sorted(seen)}, {outcomes}"
            time.sleep(0.3)  # a poller more eager than the page, leaving the single writer its turns
            reader = (impatient, patient)[sum(outcomes.values()) % 2]
            before = predictions(patient)
            try:
                summary = store_summary(reader)
                audit = audit_store(reader, ["region"])
            except StoreBusyError as exc:
                assert reader is impatient and "\n" not in str(exc) and "is locked by another process" in str(exc)
                outcomes["busy"] += 1
                continue
            after = predictions(patient)
            assert before <= summary.predictions <= after  # no lost and no doubled rows in what it read
            assert audit.verdict in ("pass", "fail", "insufficient")
            outcomes["ok"] += 1
            seen.add(summary.predictions)
            if not cli_runs and len(seen) >= 2:  # the CLI's entry point, in this process, under the same contention
                capsys.readouterr()  # only the command's own output below
                monkeypatch.setattr(sys, "argv", ["workbench", "info", "--json", "--db", str(store.path)])
                with pytest.raises(SystemExit) as ended:
                    main()
                out = capsys.readouterr()
                cli_runs.append((after, ended.value.code, out, predictions(patient)))
    finally:
        writer.terminate()
        _, err = writer.communicate(timeout=30)
    assert writer.returncode == 0, err
    ((low, code, out, high),) = cli_runs
    assert "Traceback" not in out.err
    if code == 0:
        assert low <= json.loads(out.out)["predictions"] <= high
    else:
        assert code == 2 and out.err.count("\n") == 1 and "locked" in out.err
