"""The decision log: append-only, hash-chained, verifiable; the gate blocks unsafe approvals."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import duckdb
import pytest

from tests.conftest import ROOT
from workbench.core.errors import InputError
from workbench.gate.decisions import GENESIS, decide, entry_hash, export, read_decisions, verify
from workbench.sources.evidence import record_run
from workbench.sources.store import Store


@pytest.fixture()
def log(tmp_path) -> Store:
    """A store with three decisions."""
    store = Store(tmp_path / "s.duckdb")
    decide(store, "defer", "ana", "wait for labels")
    decide(store, "reject", "bob", "drift too large", candidate="v2")
    decide(store, "approve", "cy", "all checks green", candidate="v3")
    return store


def tamper(store: Store, sql: str) -> None:
    con = duckdb.connect(str(store.path))
    con.execute(sql)
    con.close()


def test_each_hash_is_sha256_of_the_canonical_entry_with_prev_hash(log):
    entries = read_decisions(log)
    assert [d.seq for d in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS
    assert entries[1].prev_hash == entries[0].hash and entries[2].prev_hash == entries[1].hash
    first = entries[0].to_dict()
    canonical = json.dumps({k: v for k, v in first.items() if k != "hash"}, sort_keys=True, separators=(",", ":"))
    assert first["hash"] == hashlib.sha256(canonical.encode()).hexdigest() == entry_hash(first)


def test_an_intact_chain_verifies(log):
    check = verify(log)
    assert (check.ok, check.entries, check.first_bad_seq) == (True, 3, None)


@pytest.mark.parametrize(
    ("sql", "bad"),
    [
        ("UPDATE decisions SET rationale = 'edited' WHERE seq = 2", 2),
        ("UPDATE decisions SET reviewer = 'mallory' WHERE seq = 1", 1),
        ("DELETE FROM decisions WHERE seq = 2", 3),
        ("DELETE FROM decisions WHERE seq = 3", 3),
        ("UPDATE decisions SET seq = CASE seq WHEN 1 THEN 2 WHEN 2 THEN 1 ELSE seq END", 1),
        ("UPDATE decisions SET evidence = '{}' WHERE seq = 3", 3),
    ],
)
def test_any_single_edit_deletion_or_swap_is_detected(log, sql, bad):
    tamper(log, sql)
    check = verify(log)
    assert not check.ok
    assert check.first_bad_seq == bad


def test_cli_verify_exits_1_and_names_the_first_bad_entry(log):
    tamper(log, "UPDATE decisions SET decision = 'approve' WHERE seq = 2")
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "decisions", "verify", "--db", str(log.path)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 1
    assert out.stdout.strip() == "chain BROKEN at entry 2: entry 2 was edited (its hash does not match)"


def test_two_processes_deciding_at_once_both_land_in_order(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    decide(store, "defer", "seed", "first")
    cmd = [sys.executable, "-m", "workbench.cli", "decide", "--decision", "defer", "--db", str(store.path)]
    procs = [
        subprocess.Popen(
            [*cmd, "--reviewer", f"r{i}", "--rationale", f"parallel {i}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    entries = read_decisions(store)
    assert [d.seq for d in entries] == [1, 2, 3]
    assert sorted(d.reviewer for d in entries[1:]) == ["r0", "r1"]
    assert verify(store).ok


def test_approval_is_blocked_by_a_failing_fairness_audit_unless_overridden(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    record_run(store, "fairness", "fail", {"verdict_text": "fail: FPR for region=south is 0.27 vs 0.11"})
    with pytest.raises(InputError, match="approval refused: the latest fairness audit failed"):
        decide(store, "approve", "ana", "ship it")
    assert read_decisions(store) == []
    entry = decide(store, "approve", "ana", "ship it", override_reason="bias fixed upstream, audit re-run pending")
    assert entry.override_reason == "bias fixed upstream, audit re-run pending"
    assert entry.evidence["fairness"]["verdict"] == "fail"
    decide(store, "reject", "bob", "rejecting is never blocked")
    assert verify(store).ok


def test_approval_is_blocked_by_a_failed_srm_check(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    record_run(store, "abtest", "srm", {"srm": {"ok": False, "p_value": 1e-6}})
    with pytest.raises(InputError, match="sample-ratio check"):
        decide(store, "approve", "ana", "ship it")


def test_a_passing_audit_does_not_block(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    record_run(store, "fairness", "fail", {})
    record_run(store, "fairness", "pass", {})  # the latest audit counts
    assert decide(store, "approve", "ana", "fixed").decision == "approve"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decision": "ship"}, "decision must be one of approve, reject, defer"),
        ({"reviewer": "  "}, "needs a reviewer"),
        ({"rationale": ""}, "needs a rationale"),
    ],
)
def test_incomplete_decisions_are_refused(tmp_path, kwargs, message):
    args = {"decision": "defer", "reviewer": "ana", "rationale": "why"} | kwargs
    with pytest.raises(InputError, match=message):
        decide(Store(tmp_path / "s.duckdb"), **args)


def test_exports_carry_every_entry_and_csv_neutralises_formulas(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    decide(store, "defer", '=HYPERLINK("http://x")', "@SUM(A1)")
    lines = export(store, "jsonl").splitlines()
    assert json.loads(lines[0])["reviewer"] == '=HYPERLINK("http://x")'
    csv_text = export(store, "csv")
    assert "'=HYPERLINK" in csv_text and "'@SUM(A1)" in csv_text
    report = export(store, "md")
    assert "1 decisions; hash chain intact." in report and "## 1. defer" in report
    assert "- **fairness**: not run" in report
