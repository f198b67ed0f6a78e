"""Append-only, hash-chained decision log: who decided what, on which evidence, with which data.

Each entry stores ``prev_hash`` and ``hash = SHA-256(canonical JSON of the entry including
prev_hash)`` (canonical: sorted keys, no spaces, UTF-8), so editing, deleting or reordering any
row breaks the chain. The head (last seq and hash) is also kept in ``meta``, in the same
transaction, so deleting the newest entry is detected too. Appends take the store's write lock,
so two processes deciding at once both land, one after the other, with a valid chain.

The plain chain only detects accidental damage: whoever can write the store can recompute every hash.
Two anchors outside the store detect a deliberate rewrite:

- a key (``$WORKBENCH_DECISION_KEY``, or a file named by ``$WORKBENCH_DECISION_KEY_FILE``): each entry then
  carries ``mac = HMAC-SHA256(key, hash)``, and the stored head ``HMAC-SHA256(key, "seq:hash")``; without the
  key nobody can forge them, so a recomputed chain fails at the first rewritten entry;
- an exported head (``seq:hash`` of the newest entry, :func:`head`) that a reviewer keeps elsewhere;
  :func:`verify` with ``head=`` checks that the log still holds that entry unchanged (the hash chains
  backwards, so every entry before it is unchanged too), which catches a rewrite or a truncation.

Entries written without a key carry no MAC; they verify as before and are counted as unkeyed.

With MLflow on, an entry also stores ``mlflow_run_id``, the run the decision is logged in (created empty just before
the entry is committed, so the hash covers it). The hash covers that field only when it is set, so entries from
before it (and entries whose MLflow step failed) hash and verify exactly as before.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.core.errors import InputError
from workbench.core.result import FAMILIES
from workbench.sources.evidence import latest_runs_from
from workbench.sources.store import Store, read_meta, table_columns, write_meta

GENESIS = "0" * 64
DECISIONS = ("approve", "reject", "defer")
KEY_ENV = "WORKBENCH_DECISION_KEY"
KEY_FILE_ENV = "WORKBENCH_DECISION_KEY_FILE"
MIN_KEY_BYTES = 16  # a shorter secret could be guessed offline from one entry and its MAC
_DDL = """
CREATE TABLE IF NOT EXISTS decisions (
    seq BIGINT, decided_at VARCHAR, decision VARCHAR, reviewer VARCHAR, rationale VARCHAR,
    candidate VARCHAR, dataset_sha256 VARCHAR, evidence VARCHAR, override_reason VARCHAR,
    prev_hash VARCHAR, hash VARCHAR)
"""
_FIELDS = (
    "seq",
    "decided_at",
    "decision",
    "reviewer",
    "rationale",
    "candidate",
    "dataset_sha256",
    "evidence",
    "override_reason",
    "prev_hash",
)


@dataclass(frozen=True)
class Decision:
    """One entry of the log; ``evidence`` is the snapshot of the analyses' verdicts at that moment."""

    seq: int
    decided_at: str
    decision: str
    reviewer: str
    rationale: str
    candidate: str | None
    dataset_sha256: str | None
    evidence: dict[str, Any]
    override_reason: str | None
    prev_hash: str
    hash: str
    mac: str | None = None  # HMAC-SHA256(key, hash) when written with a key
    mlflow_run_id: str | None = None  # the MLflow run the decision is logged in, covered by the hash

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``mac`` and ``mlflow_run_id`` only when the entry carries them (an entry without
        them reads as before)."""
        doc = asdict(self)
        for optional in ("mac", "mlflow_run_id"):
            if doc[optional] is None:
                del doc[optional]
        return doc


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of ``entry`` (every field but ``hash`` and ``mac``, prev_hash included;
    ``mlflow_run_id`` only when set, so an entry without it hashes as before the field existed)."""
    fields = {k: entry[k] for k in _FIELDS}
    if entry.get("mlflow_run_id") is not None:
        fields["mlflow_run_id"] = entry["mlflow_run_id"]
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def decision_key() -> bytes | None:
    """The log's key, kept outside the store: ``$WORKBENCH_DECISION_KEY``, else the contents of the file named by
    ``$WORKBENCH_DECISION_KEY_FILE`` (trailing newline dropped), else None (an unkeyed log)."""
    text = os.environ.get(KEY_ENV, "")
    if text:
        key = text.encode("utf-8")
        source = f"${KEY_ENV}"
    elif os.environ.get(KEY_FILE_ENV, "").strip():
        path = Path(os.environ[KEY_FILE_ENV].strip()).expanduser()
        try:
            key = path.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise InputError(f"${KEY_FILE_ENV}: cannot read the decision key file {path} ({exc.strerror})") from None
        source = f"the key file {path}"
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise InputError(f"the decision key from {source} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def entry_mac(key: bytes, entry_hash_hex: str) -> str:
    """HMAC-SHA256 hex of an entry's hash under ``key``: the hash covers every field and the previous hash."""
    return hmac.new(key, entry_hash_hex.encode("ascii"), hashlib.sha256).hexdigest()


def head_mac(key: bytes, seq: int, hash_hex: str) -> str:
    """HMAC-SHA256 hex of the head ``seq:hash`` under ``key`` (a truncated log cannot forge its new head)."""
    return hmac.new(key, f"head:{seq}:{hash_hex}".encode("ascii"), hashlib.sha256).hexdigest()


def gate_blockers(evidence: dict[str, Any]) -> list[str]:
    """Reasons an approval must be refused without an override: a failing fairness audit, a failed SRM check."""
    blockers = []
    fairness = evidence.get("fairness")
    if fairness and fairness.get("verdict") == "fail":
        blockers.append(f"the latest fairness audit failed ({fairness.get('created_at')})")
    abtest = evidence.get("abtest")
    srm = (abtest or {}).get("summary", {}).get("srm") or {}
    if abtest and srm.get("ok") is False:
        blockers.append(f"the latest A/B test failed its sample-ratio check (p={srm.get('p_value')})")
    return blockers


def decide(
    store: Store,
    decision: str,
    reviewer: str,
    rationale: str,
    candidate: str | None = None,
    manifest: dict[str, Any] | None = None,
    override_reason: str | None = None,
    now: datetime | None = None,
    key: bytes | None = None,
    reserve_run: Callable[[int, str], str | None] | None = None,
) -> Decision:
    """Append a decision with the evidence snapshot; refuse an approval the gate blocks unless overridden.

    ``key`` (default: :func:`decision_key` from the environment) adds the entry's MAC and the head's MAC.
    ``reserve_run(seq, decision)`` (MLflow on) returns the id of the run the decision will be logged in, or None
    when MLflow failed; it is called once the decision is accepted, and the entry stores the id."""
    key = key if key is not None else decision_key()
    if decision not in DECISIONS:
        raise InputError(f"decision must be one of {', '.join(DECISIONS)}, not '{decision}'")
    if not reviewer.strip():
        raise InputError("a decision needs a reviewer name")
    if not rationale.strip():
        raise InputError("a decision needs a rationale")
    with store.connect(read_only=False) as con:
        con.execute(_DDL)
        con.execute("ALTER TABLE decisions ADD COLUMN IF NOT EXISTS mac VARCHAR")  # logs from before the key
        if reserve_run is not None:  # the column appears with the first tracked decision; a log without MLflow
            con.execute("ALTER TABLE decisions ADD COLUMN IF NOT EXISTS mlflow_run_id VARCHAR")  # keeps its shape
        con.begin()
        try:
            runs = latest_runs_from(con)
            evidence = {family: (run.to_dict() if run else None) for family, run in runs.items()}
            if manifest is not None:
                evidence["dataset"] = {k: manifest.get(k) for k in ("rows", "sha256", "filters", "created_at")}
            blockers = gate_blockers(evidence)
            if decision == "approve" and blockers and not (override_reason or "").strip():
                raise InputError("approval refused: " + "; ".join(blockers) + " (give an override reason to proceed)")
            last = con.execute("SELECT seq, hash, mac FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()
            if last and last[2] and not key:  # an unkeyed entry after a keyed one would read as a removed MAC
                raise InputError(f"this decision log is keyed: set ${KEY_ENV} or ${KEY_FILE_ENV} to record a decision")
            if last and last[2] and key and not hmac.compare_digest(last[2], entry_mac(key, last[1])):
                raise InputError("the decision key does not match the key this log was written with")
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            entry = {
                "seq": seq,
                "decided_at": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "decision": decision,
                "reviewer": reviewer.strip(),
                "rationale": rationale.strip(),
                "candidate": candidate,
                "dataset_sha256": (manifest or {}).get("sha256"),
                "evidence": evidence,
                "override_reason": (override_reason or "").strip() or None,
                "prev_hash": prev,
                "mlflow_run_id": reserve_run(seq, decision) if reserve_run else None,
            }
            entry["hash"] = entry_hash(entry)
            entry["mac"] = entry_mac(key, entry["hash"]) if key else None
            row = {**entry, "evidence": json.dumps(evidence, sort_keys=True)}
            tracked = ("mlflow_run_id",) if "mlflow_run_id" in table_columns(con, "decisions") else ()
            columns = (*_FIELDS, "hash", "mac", *tracked)
            con.execute(
                f"INSERT INTO decisions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [row[k] for k in columns],
            )
            stored_head = {"seq": seq, "hash": entry["hash"]}
            if key:
                stored_head["mac"] = head_mac(key, seq, entry["hash"])
            write_meta(con, "decisions_head", stored_head)
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return Decision(**entry)


def read_decisions(store: Store) -> list[Decision]:
    """Every decision in storage order (by seq)."""
    with store.connect(read_only=True) as con:
        if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'decisions'").fetchone()[
            0
        ]:
            return []
        present = table_columns(con, "decisions")
        optional = [c if c in present else "NULL" for c in ("mac", "mlflow_run_id")]  # logs from before them
        rows = con.execute(
            f"SELECT {', '.join(_FIELDS)}, hash, {', '.join(optional)} FROM decisions ORDER BY seq, rowid"
        ).fetchall()
    fields = (*_FIELDS, "hash", "mac", "mlflow_run_id")
    return [Decision(**{**dict(zip(fields, r, strict=True)), "evidence": json.loads(r[7])}) for r in rows]


@dataclass(frozen=True)
class Verification:
    """Result of checking the chain: ok, entries checked, the first bad entry with why, and what anchored it
    (``keyed``: a key checked the MACs; ``macs``/``unkeyed``: entries with and without one; ``head``: the kept
    head that was checked, as ``seq:hash``)."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None
    keyed: bool = False
    macs: int = 0
    unkeyed: int = 0
    head: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def parse_head(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as printed by ``workbench decisions head`` -> (seq, hash); a one-line error otherwise."""
    seq, _, hash_hex = text.strip().partition(":")
    hash_hex = hash_hex.strip().lower()
    if not (seq.strip().isdigit() and int(seq) >= 1 and len(hash_hex) == 64):
        raise InputError(
            f"a kept head is SEQ:HASH as `workbench decisions head` prints it (64 hex digits), not '{text}'"
        )
    try:
        bytes.fromhex(hash_hex)
    except ValueError:
        raise InputError(f"a kept head's hash is 64 hex digits, not '{hash_hex}'") from None
    return int(seq), hash_hex


def verify(store: Store, key: bytes | None = None, head: str | None = None) -> Verification:
    """Recompute the chain; name the first entry edited, missing or out of order.

    ``key`` (default: :func:`decision_key`) checks each entry's MAC and the stored head's; ``head`` (``seq:hash``
    kept outside the store) checks that the log still holds that entry unchanged."""
    key = key if key is not None else decision_key()
    kept = parse_head(head) if head else None
    entries = read_decisions(store)
    with store.connect(read_only=True) as con:
        stored = read_meta(con, "decisions_head")
    macs = sum(d.mac is not None for d in entries)
    unkeyed = len(entries) - macs

    def broken(seq: int | None, problem: str) -> Verification:
        return Verification(False, len(entries), seq, problem, key is not None, macs, unkeyed, head)

    prev, keyed_before = GENESIS, False
    for expected_seq, d in enumerate(entries, start=1):
        if d.seq != expected_seq:
            return broken(d.seq, f"entry {d.seq} stands where entry {expected_seq} should")
        if d.prev_hash != prev:
            return broken(d.seq, f"entry {d.seq} does not follow entry {d.seq - 1}")
        if entry_hash(d.to_dict()) != d.hash:
            return broken(d.seq, f"entry {d.seq} was edited (its hash does not match)")
        if key and d.mac is not None and not hmac.compare_digest(d.mac, entry_mac(key, d.hash)):
            return broken(d.seq, f"entry {d.seq} was rewritten (its MAC does not match the key)")
        if key and d.mac is None and keyed_before:
            return broken(d.seq, f"entry {d.seq} carries no MAC though an earlier entry does (its MAC was removed)")
        keyed_before = keyed_before or d.mac is not None
        prev = d.hash
    if kept is not None:
        match = next((d for d in entries if d.seq == kept[0]), None)
        if match is None:
            return broken(kept[0], f"entry {kept[0]} of the kept head is missing (the log was truncated)")
        if match.hash != kept[1]:
            return broken(kept[0], f"entry {kept[0]} is not the kept head (the log was rewritten at or before it)")
    last = entries[-1].seq if entries else 0
    if stored is not None and (not entries or stored["seq"] != last or stored["hash"] != prev):
        return broken(last + 1, f"entries after {last} are missing (head is {stored['seq']})")
    if stored is None and entries:
        return broken(1, "the log's head record is missing")
    keyed_head = key and entries and entries[-1].mac is not None
    if keyed_head and ("mac" not in stored or not hmac.compare_digest(stored["mac"], head_mac(key, last, prev))):
        return broken(last, "the stored head was rewritten (its MAC does not match the key)")
    return Verification(True, len(entries), None, None, key is not None, macs, unkeyed, head)


def anchor_note(check: Verification) -> str:
    """What an intact chain proves: with a key every MAC was checked; without one (or for unkeyed entries) only
    accidental damage is detectable, unless a kept head covers them."""
    kept = f"; the kept head {check.head.split(':')[0]} is unchanged" if check.head else ""
    if not check.entries:
        return ""
    if not check.keyed:
        return (
            f"no key set (${KEY_ENV}): this detects accidental damage only, not a rewrite that recomputes "
            f"the hashes{kept}"
        )
    if not check.unkeyed:
        return f"every entry's MAC checked with the key{kept}"
    return (
        f"{check.macs} MACs checked with the key; {check.unkeyed} older entries are unkeyed (only accidental "
        f"damage is detectable for them){kept}"
    )


def describe(check: Verification) -> str:
    """The verification as one line: intact with what anchored it, or broken at the first bad entry."""
    if not check.ok:
        return f"chain BROKEN at entry {check.first_bad_seq}: {check.problem}"
    note = anchor_note(check)
    return f"chain intact: {check.entries} decisions" + (f" ({note})" if note else "")


def head(store: Store) -> dict[str, Any]:
    """The newest entry's ``seq`` and ``hash`` (and ``head``, ``seq:hash``) for a reviewer to keep outside the
    store; refused when the log does not verify or is empty."""
    check = verify(store)
    if not check.ok:
        raise InputError(f"no head exported: the log does not verify ({describe(check)})")
    entries = read_decisions(store)
    if not entries:
        raise InputError("no head exported: the decision log is empty")
    last = entries[-1]
    return {"seq": last.seq, "hash": last.hash, "head": f"{last.seq}:{last.hash}", "keyed": last.mac is not None}


def export(store: Store, fmt: str) -> str:
    """The log as JSON Lines, CSV, or a Markdown audit report (one section per decision)."""
    entries = read_decisions(store)
    if fmt == "jsonl":
        return "".join(json.dumps(d.to_dict(), sort_keys=True) + "\n" for d in entries)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([*_FIELDS, "hash", "mlflow_run_id"])
        for d in entries:
            row = d.to_dict()
            row["evidence"] = json.dumps(row["evidence"], sort_keys=True)
            writer.writerow([neutralise(row.get(k)) for k in (*_FIELDS, "hash", "mlflow_run_id")])
        return buffer.getvalue()
    if fmt == "md":
        return _markdown(entries, verify(store))
    raise InputError(f"unknown export format '{fmt}': use jsonl, csv or md")


def neutralise(value: Any) -> Any:
    """Prefix a text cell starting with = + - @ (or tab/CR), also after leading whitespace (" =cmd", "\\t=1+1": a
    spreadsheet trims it), with ' so spreadsheets do not run it (OWASP's CSV injection rule)."""
    if isinstance(value, str) and (value[:1] in ("\t", "\r") or value.lstrip()[:1] in ("=", "+", "-", "@")):
        return "'" + value
    return value


def _evidence_line(family: str, run: dict[str, Any] | None) -> str:
    if run is None:
        return f"- **{family}**: not run"
    sentence = run.get("summary", {}).get("verdict_text") or ""
    return f"- **{family}**: {run['verdict']} ({run['created_at']}){': ' + sentence if sentence else ''}"


def _markdown(entries: list[Decision], check: Verification) -> str:
    status = "intact" if check.ok else f"BROKEN at entry {check.first_bad_seq}: {check.problem}"
    lines = ["# Retrain decision log", "", f"{len(entries)} decisions; hash chain {status}.", ""]
    for d in entries:
        lines += [
            f"## {d.seq}. {d.decision} — {d.reviewer}, {d.decided_at}",
            "",
            f"**Candidate:** {d.candidate or '—'}  ",
            f"**Dataset sha256:** {d.dataset_sha256 or '—'}  ",
            f"**Rationale:** {d.rationale}",
        ]
        if d.override_reason:
            lines.append(f"**Override of the gate:** {d.override_reason}")
        if d.mlflow_run_id:
            lines.append(f"**MLflow run:** {d.mlflow_run_id}")
        lines += ["", "Evidence at the time:", ""]
        lines += [_evidence_line(f, d.evidence.get(f)) for f in FAMILIES]
        lines += ["", f"`hash {d.hash}` · `prev {d.prev_hash}`", ""]
    return "\n".join(lines)
