"""Live mode: the simulator's events, and a reader in another process while it writes (no lost, doubled
or half batches)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pyarrow.compute as pc
import pytest

from tests.conftest import ROOT
from workbench.core.errors import InputError
from workbench.demo.scenario import START, Scenario, build_demo
from workbench.demo.simulate import Simulator, simulate
from workbench.sources.store import Store
from workbench.stream.snapshot import stream_snapshot

LIVE_COUNTS = """
SELECT
  (SELECT count(*) FROM predictions WHERE trace_id LIKE 'live-%'),
  (SELECT count(DISTINCT trace_id) FROM predictions WHERE trace_id LIKE 'live-%'),
  (SELECT count(*) FROM feedback WHERE trace_id LIKE 'live-%'),
  (SELECT coalesce(sum(accepted), 0) FROM ingests WHERE source LIKE 'simulate:%' AND table_name = 'predictions'),
  (SELECT coalesce(sum(accepted), 0) FROM ingests WHERE source LIKE 'simulate:%' AND table_name = 'feedback')
"""
BATCHES = "SELECT table_name, split_part(source, ':', 3) FROM ingests WHERE source LIKE 'simulate:%'"


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("live") / "demo.duckdb")
    build_demo(store, Scenario(rows=5_000, days=30))
    return store


@pytest.fixture()
def copy(demo_store, tmp_path):
    target = tmp_path / "live.duckdb"
    shutil.copy(demo_store.path, target)
    return Store(target)


def test_a_seeded_simulator_repeats_its_events():
    first, second = Simulator(50, seed=3), Simulator(50, seed=3)
    for now in (10_000_000, 20_000_000):
        (p1, f1), (p2, f2) = first.batch(now, 1.0, 10_000_000), second.batch(now, 1.0, 10_000_000)
        assert p1.equals(p2) and ((f1 is None and f2 is None) or f1.equals(f2))


def test_only_feedback_that_is_due_is_written_and_the_rest_waits():
    sim = Simulator(500, seed=1, scenario=Scenario(days=30))
    now = 60 * 86_400_000_000  # µs after the demo START: past the scenario's end
    predictions, feedback = sim.batch(now, 1.0, 3_600_000_000)
    due_by = int((START + np.timedelta64(now, "us")).astype(np.int64))
    assert pc.max(pc.cast(feedback["ts"], "int64")).as_py() <= due_by
    assert pc.min(pc.cast(sim.pending["ts"], "int64")).as_py() > due_by
    ids = set(predictions["trace_id"].to_pylist())
    assert set(feedback["trace_id"].to_pylist()) <= ids  # no orphans in live mode
    assert set(sim.pending["trace_id"].to_pylist()) <= ids
    # the scenario's end state: the A/B test runs, both arms serve
    assert set(predictions["arm"].to_pylist()) == {"champion", "challenger"}
    assert set(predictions["model_version"].to_pylist()) == {"v1", "v2"}


def test_a_non_positive_rate_is_refused():
    with pytest.raises(InputError, match="--rate must be a positive number"):
        Simulator(0)


def test_simulate_writes_exactly_what_it_reports_and_continues_the_timeline(copy):
    with copy.connect() as con:
        before = con.execute("SELECT count(*), max(ts) FROM predictions").fetchone()
    reports = []
    report = simulate(copy, rate=300, interval=0.05, seed=5, speed=3600, on_batch=reports.append,
                      should_stop=lambda: len(reports) >= 6)  # fmt: skip
    assert report.batches == 6 and report.quarantined == 0
    with copy.connect() as con:
        live_p, distinct, live_f, accepted_p, accepted_f = con.execute(LIVE_COUNTS).fetchone()
        first_live = con.execute("SELECT min(ts) FROM predictions WHERE trace_id LIKE 'live-%'").fetchone()[0]
    assert live_p == distinct == accepted_p == report.predictions > 0
    assert live_f == accepted_f == report.feedback > 0
    assert first_live >= before[1]
    # a second run with the same seed starts later on the clock: new ids, nothing quarantined
    again = simulate(copy, rate=300, interval=0.05, seed=5, speed=3600, duration=0.2)
    with copy.connect() as con:
        live_p2, distinct2, *_ = con.execute(LIVE_COUNTS).fetchone()
    assert again.quarantined == 0 and live_p2 == distinct2 == report.predictions + again.predictions


def test_a_reader_in_another_process_never_sees_half_a_batch_and_counts_match(copy):
    env = {**os.environ, "WORKBENCH_DB": str(copy.path)}
    writer = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "simulate", "--rate", "200", "--interval", "0.3", "--speed", "3600",
         "--duration", "90", "--seed", "11", "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    reads, snapshots, progress = [], 0, set()
    reader = Store(copy.path, lock_timeout_s=15)
    deadline = time.monotonic() + 120
    while writer.poll() is None and time.monotonic() < deadline:
        with reader.connect(read_only=True) as con:  # one connection: one consistent view
            counts = con.execute(LIVE_COUNTS).fetchone()
            batches = con.execute(BATCHES).fetchall()
        reads.append((counts, batches))
        if len(reads) % 10 == 0:
            stream_snapshot(reader)  # the page's own read path, under the same contention
            snapshots += 1
        progress.add(counts[0])
        if len(progress - {0}) >= 5 and snapshots >= 1:  # overlapped the writer enough: stop it as Ctrl-C would
            writer.terminate()  # (on a busy machine a fixed duration could end before the reader saw it write)
            break
        time.sleep(0.2)  # a poller more eager than the page (every few seconds)
    out, err = writer.communicate(timeout=30)
    assert writer.returncode == 0, err
    report = json.loads(out)
    with copy.connect() as con:
        final_counts = con.execute(LIVE_COUNTS).fetchone()
        final_batches = con.execute(BATCHES).fetchall()
    live_p, distinct, live_f, accepted_p, accepted_f = final_counts
    assert live_p == distinct == accepted_p == report["predictions"] > 0  # no lost and no doubled predictions
    assert live_f == accepted_f == report["feedback"] > 0
    tables_of = {}
    for table, batch in final_batches:
        tables_of.setdefault(batch, set()).add(table)
    assert len(tables_of) == report["batches"]  # ≈60 predictions a batch: none is empty
    assert sum(tables == {"predictions", "feedback"} for tables in tables_of.values()) >= report["batches"] - 1
    partial_reads = 0
    for (p, d, f, ap, af), batches in reads:
        assert p == d == ap and f == af  # each batch's rows and its ingest record land together
        seen = {}
        for table, batch in batches:
            seen.setdefault(batch, set()).add(table)
        for batch, tables in seen.items():
            assert tables == tables_of[batch], f"half of batch {batch} visible: {tables} of {tables_of[batch]}"
        partial_reads += 0 < p < live_p
    assert partial_reads >= 3, f"the reader should have overlapped the writer ({len(reads)} reads)"
    print(f"{len(reads)} reads, {partial_reads} during the run, {snapshots} snapshots, {report['batches']} batches")
    assert snapshots >= 1
