"""The decision log: append-only, hash-chained, verifiable; the gate blocks unsafe approvals; a key and a kept
head anchor it outside the store, so a rewrite that recomputes every hash is caught."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys

import duckdb
import pytest

from tests.conftest import ROOT
from workbench.core.errors import InputError
from workbench.gate.decisions import (
    GENESIS,
    KEY_ENV,
    KEY_FILE_ENV,
    decide,
    describe,
    entry_hash,
    export,
    head,
    neutralise,
    read_decisions,
    verify,
)
from workbench.sources.evidence import record_run
from workbench.sources.store import Store

KEY = b"a decision key kept outside the store"


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch):
    """Each test says which key it uses: none from the developer's shell."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)


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


def rewrite_and_recompute(store: Store, seq: int, rationale: str, strip_macs: bool = False) -> None:
    """The attack of issue 21: rewrite one rationale, then recompute every later hash and the stored head with plain
    SHA-256, as anyone who can write the store can (optionally dropping every MAC too)."""
    con = duckdb.connect(str(store.path))
    columns = [c[0] for c in con.execute("DESCRIBE decisions").fetchall()]
    fields = [c for c in columns if c not in ("hash", "mac")]
    rows = [dict(zip(columns, r, strict=True)) for r in con.execute("SELECT * FROM decisions ORDER BY seq").fetchall()]
    prev = GENESIS
    for row in rows:
        if row["seq"] == seq:
            row["rationale"] = rationale
        row["prev_hash"] = prev
        entry = {k: (json.loads(row[k]) if k == "evidence" else row[k]) for k in fields}
        canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        row["hash"] = prev = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        mac = "NULL" if strip_macs else "mac"
        con.execute(
            f"UPDATE decisions SET rationale = ?, prev_hash = ?, hash = ?, mac = {mac} WHERE seq = ?",
            [row["rationale"], row["prev_hash"], row["hash"], row["seq"]],
        )
    head_doc = json.dumps({"hash": prev, "seq": rows[-1]["seq"]}, sort_keys=True)
    con.execute("UPDATE meta SET value = ? WHERE key = 'decisions_head'", [head_doc])
    con.close()


@pytest.fixture()
def keyed_log(tmp_path) -> Store:
    """A store with three decisions written with KEY."""
    store = Store(tmp_path / "k.duckdb")
    for decision, reviewer in (("defer", "ana"), ("reject", "bob"), ("approve", "cy")):
        decide(store, decision, reviewer, f"{reviewer} decides", key=KEY)
    return store


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


def test_the_markdown_export_names_every_analysis_the_gate_records_model_quality_too(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    record_run(store, "quality", "dropped", {"verdict_text": "quality dropped: F1 0.61 vs 0.80 reference"})
    decide(store, "approve", "ana", "quality fell after the concept drift")
    report = export(store, "md")
    assert "- **quality**: dropped (" in report and "quality dropped: F1 0.61 vs 0.80 reference" in report
    assert "- **drift**: not run" in report and "- **triggers**: not run" in report


def test_a_rewrite_that_recomputes_every_hash_passes_the_plain_chain_and_says_so(log):
    kept = head(log)["head"]
    rewrite_and_recompute(log, 2, "a rationale nobody wrote")
    check = verify(log)
    assert check.ok and not check.keyed  # the plain chain cannot see it: the message says what it can detect
    assert describe(check) == (
        "chain intact: 3 decisions (no key set ($WORKBENCH_DECISION_KEY): this detects accidental damage only, "
        "not a rewrite that recomputes the hashes)"
    )
    caught = verify(log, head=kept)  # the head a reviewer kept elsewhere catches it
    assert (caught.ok, caught.first_bad_seq) == (False, 3)
    assert caught.problem == "entry 3 is not the kept head (the log was rewritten at or before it)"


def test_the_key_catches_a_rewrite_that_recomputes_every_hash_and_the_head(keyed_log):
    check = verify(keyed_log, key=KEY)
    assert (check.ok, check.keyed, check.macs, check.unkeyed) == (True, True, 3, 0)
    assert describe(check) == "chain intact: 3 decisions (every entry's MAC checked with the key)"
    rewrite_and_recompute(keyed_log, 2, "a rationale nobody wrote")
    assert read_decisions(keyed_log)[1].rationale == "a rationale nobody wrote"
    check = verify(keyed_log, key=KEY)
    assert (check.ok, check.first_bad_seq) == (False, 2)
    assert check.problem == "entry 2 was rewritten (its MAC does not match the key)"
    assert not verify(keyed_log, key=b"another key of at least sixteen bytes").ok


def test_stripping_every_mac_reads_as_an_unkeyed_log_and_the_kept_head_catches_it(keyed_log):
    kept = head(keyed_log)["head"]  # read with no key in the environment: the MACs are still there
    rewrite_and_recompute(keyed_log, 1, "rewritten", strip_macs=True)
    check = verify(keyed_log, key=KEY)
    assert check.ok and (check.macs, check.unkeyed) == (0, 3)  # never claims a MAC it did not check
    assert "3 older entries are unkeyed (only accidental damage is detectable for them)" in describe(check)
    caught = verify(keyed_log, key=KEY, head=kept)
    assert (caught.ok, caught.first_bad_seq) == (False, 3)


def test_removing_the_newest_macs_or_truncating_with_a_plain_head_is_caught_with_the_key(keyed_log):
    tamper(keyed_log, "UPDATE decisions SET mac = NULL WHERE seq = 3")
    check = verify(keyed_log, key=KEY)
    assert (check.ok, check.first_bad_seq) == (False, 3)
    assert check.problem == "entry 3 carries no MAC though an earlier entry does (its MAC was removed)"
    tamper(keyed_log, "DELETE FROM decisions WHERE seq = 3")
    second = read_decisions(keyed_log)[1]
    head_doc = json.dumps({"hash": second.hash, "seq": 2})
    tamper(keyed_log, f"UPDATE meta SET value = '{head_doc}' WHERE key = 'decisions_head'")
    check = verify(keyed_log, key=KEY)
    assert (check.ok, check.first_bad_seq) == (False, 2)
    assert check.problem == "the stored head was rewritten (its MAC does not match the key)"


def test_a_kept_head_catches_a_truncation(log):
    kept = head(log)
    assert kept["head"] == f"3:{read_decisions(log)[2].hash}" and kept["keyed"] is False
    assert verify(log, head=kept["head"]).ok
    assert verify(log, head=f"2:{read_decisions(log)[1].hash}").ok  # an older kept head still holds
    tamper(log, "DELETE FROM decisions WHERE seq = 3")
    tamper(log, f"UPDATE meta SET value = '{json.dumps({'hash': read_decisions(log)[1].hash, 'seq': 2})}'")
    assert verify(log).ok  # the plain chain and its head were both cut back
    check = verify(log, head=kept["head"])
    assert (check.ok, check.first_bad_seq) == (False, 3)
    assert check.problem == "entry 3 of the kept head is missing (the log was truncated)"


def test_the_key_comes_from_the_environment_or_a_key_file(tmp_path, monkeypatch):
    store = Store(tmp_path / "s.duckdb")
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    first = decide(store, "defer", "ana", "keyed from the variable")
    monkeypatch.delenv(KEY_ENV)
    key_file = tmp_path / "decision.key"
    key_file.write_bytes(KEY + b"\n")
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))
    second = decide(store, "defer", "bob", "keyed from the file")
    assert first.mac is not None and second.mac is not None and "mac" in second.to_dict()
    assert verify(store).macs == 2 and verify(store, key=KEY).ok
    monkeypatch.delenv(KEY_FILE_ENV)
    with pytest.raises(InputError, match=r"this decision log is keyed: set \$WORKBENCH_DECISION_KEY"):
        decide(store, "defer", "cy", "forgot the key")
    with pytest.raises(InputError, match="does not match the key this log was written with"):
        decide(store, "defer", "cy", "wrong key", key=b"another key of at least sixteen bytes")
    assert len(read_decisions(store)) == 2


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({KEY_ENV: "short"}, "shorter than 16 bytes"),
        ({KEY_FILE_ENV: "/nonexistent/decision.key"}, "cannot read the decision key file /nonexistent/decision.key"),
    ],
)
def test_a_weak_or_unreadable_key_is_refused_in_one_line(tmp_path, monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=message):
        decide(Store(tmp_path / "s.duckdb"), "defer", "ana", "why")


def test_a_log_from_before_the_key_verifies_and_keyed_entries_follow_it(log):
    tamper(log, "ALTER TABLE decisions DROP COLUMN mac")  # the table as logs before the key have it
    old = verify(log, key=KEY)
    assert (old.ok, old.macs, old.unkeyed) == (True, 0, 3)
    assert [d.mac for d in read_decisions(log)] == [None, None, None]
    assert "mac" not in read_decisions(log)[0].to_dict()  # an unkeyed entry reads as before
    decide(log, "approve", "dee", "from now on keyed", key=KEY)
    check = verify(log, key=KEY)
    assert (check.ok, check.macs, check.unkeyed) == (True, 1, 3)
    assert "1 MACs checked with the key; 3 older entries are unkeyed" in describe(check)


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", "decisions", *args], capture_output=True, text=True, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in (KEY_ENV, KEY_FILE_ENV)} | (env or {}),
    )  # fmt: skip


def test_cli_head_and_verify_head_catch_the_recomputed_chain(keyed_log):
    db = ("--db", str(keyed_log.path))
    out = cli("head", *db)
    assert out.returncode == 0 and out.stdout.strip() == f"3:{read_decisions(keyed_log)[2].hash}"
    kept = out.stdout.strip()
    assert json.loads(cli("head", *db, "--json").stdout) == {
        "seq": 3, "hash": kept[2:], "head": kept, "keyed": True
    }  # fmt: skip
    rewrite_and_recompute(keyed_log, 2, "a rationale nobody wrote")
    out = cli("verify", *db, "--head", kept)
    assert out.returncode == 1
    assert out.stdout.strip() == (
        "chain BROKEN at entry 3: entry 3 is not the kept head (the log was rewritten at or before it)"
    )
    out = cli("verify", *db, env={KEY_ENV: KEY.decode()})
    assert out.returncode == 1
    assert out.stdout.strip() == "chain BROKEN at entry 2: entry 2 was rewritten (its MAC does not match the key)"
    out = cli("head", *db, env={KEY_ENV: KEY.decode()})  # no head is exported from a broken log
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no head exported" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_refuses_a_malformed_head_in_one_line(log):
    out = cli("verify", "--db", str(log.path), "--head", "3:nothex")
    assert out.returncode == 2 and "Traceback" not in out.stderr and out.stderr.count("\n") == 1
    assert "SEQ:HASH" in out.stderr


@pytest.mark.parametrize(
    "cell", ["=1+1", "+1", "-1", "@SUM(A1)", " =cmd", "\t=1+1", "  +1", "\r\n@x", "\n-2", " \t =HYPERLINK()"]
)
def test_csv_cells_that_start_a_formula_after_whitespace_are_neutralised(tmp_path, cell):
    assert neutralise(cell) == "'" + cell
    store = Store(tmp_path / "s.duckdb")
    decide(store, "defer", "ana", "why", candidate=cell)
    (row,) = list(csv.DictReader(io.StringIO(export(store, "csv"))))
    assert row["candidate"] == "'" + cell  # the exported cell, read back as a spreadsheet would get it


@pytest.mark.parametrize("cell", ["plain", " plain", "a=b", "1-2", "", "  "])
def test_csv_cells_without_a_leading_formula_are_kept(cell):
    assert neutralise(cell) == cell
