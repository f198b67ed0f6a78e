"""Append-only, hash-chained decision log: who decided what, on which evidence, with which data.

Each entry stores ``prev_hash`` and ``hash = SHA-256(canonical JSON of the entry including
prev_hash)`` (canonical: sorted keys, no spaces, UTF-8), so editing, deleting or reordering any
row breaks the chain. The head (last seq and hash) is also kept in ``meta``, in the same
transaction, so deleting the newest entry is detected too. Appends take the store's write lock,
so two processes deciding at once both land, one after the other, with a valid chain.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from workbench.core.errors import InputError
from workbench.sources.evidence import latest_runs_from
from workbench.sources.store import Store, read_meta, write_meta

GENESIS = "0" * 64
DECISIONS = ("approve", "reject", "defer")
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of ``entry`` (every field but ``hash``, prev_hash included)."""
    canonical = json.dumps({k: entry[k] for k in _FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
) -> Decision:
    """Append a decision with the evidence snapshot; refuse an approval the gate blocks unless overridden."""
    if decision not in DECISIONS:
        raise InputError(f"decision must be one of {', '.join(DECISIONS)}, not '{decision}'")
    if not reviewer.strip():
        raise InputError("a decision needs a reviewer name")
    if not rationale.strip():
        raise InputError("a decision needs a rationale")
    with store.connect(read_only=False) as con:
        con.execute(_DDL)
        con.begin()
        try:
            runs = latest_runs_from(con)
            evidence = {family: (run.to_dict() if run else None) for family, run in runs.items()}
            if manifest is not None:
                evidence["dataset"] = {k: manifest.get(k) for k in ("rows", "sha256", "filters", "created_at")}
            blockers = gate_blockers(evidence)
            if decision == "approve" and blockers and not (override_reason or "").strip():
                raise InputError("approval refused: " + "; ".join(blockers) + " (give an override reason to proceed)")
            last = con.execute("SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()
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
            }
            entry["hash"] = entry_hash(entry)
            row = {**entry, "evidence": json.dumps(evidence, sort_keys=True)}
            con.execute(f"INSERT INTO decisions VALUES ({', '.join('?' * 11)})", [row[k] for k in (*_FIELDS, "hash")])
            write_meta(con, "decisions_head", {"seq": seq, "hash": entry["hash"]})
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
        rows = con.execute(f"SELECT {', '.join(_FIELDS)}, hash FROM decisions ORDER BY seq, rowid").fetchall()
    fields = (*_FIELDS, "hash")
    return [Decision(**{**dict(zip(fields, r, strict=True)), "evidence": json.loads(r[7])}) for r in rows]


@dataclass(frozen=True)
class Verification:
    """Result of checking the chain: ok, entries checked, and the first bad entry with why."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def verify(store: Store) -> Verification:
    """Recompute the chain; name the first entry edited, missing or out of order."""
    entries = read_decisions(store)
    with store.connect(read_only=True) as con:
        head = read_meta(con, "decisions_head")
    prev = GENESIS
    for expected_seq, d in enumerate(entries, start=1):
        if d.seq != expected_seq:
            return Verification(False, len(entries), d.seq, f"entry {d.seq} stands where entry {expected_seq} should")
        if d.prev_hash != prev:
            return Verification(False, len(entries), d.seq, f"entry {d.seq} does not follow entry {d.seq - 1}")
        if entry_hash(d.to_dict()) != d.hash:
            return Verification(False, len(entries), d.seq, f"entry {d.seq} was edited (its hash does not match)")
        prev = d.hash
    if head is not None and (not entries or head["seq"] != entries[-1].seq or head["hash"] != prev):
        last = entries[-1].seq if entries else 0
        return Verification(False, len(entries), last + 1, f"entries after {last} are missing (head is {head['seq']})")
    if head is None and entries:
        return Verification(False, len(entries), 1, "the log's head record is missing")
    return Verification(True, len(entries))


def export(store: Store, fmt: str) -> str:
    """The log as JSON Lines, CSV, or a Markdown audit report (one section per decision)."""
    entries = read_decisions(store)
    if fmt == "jsonl":
        return "".join(json.dumps(d.to_dict(), sort_keys=True) + "\n" for d in entries)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([*_FIELDS, "hash"])
        for d in entries:
            row = d.to_dict()
            row["evidence"] = json.dumps(row["evidence"], sort_keys=True)
            writer.writerow([neutralise(row[k]) for k in (*_FIELDS, "hash")])
        return buffer.getvalue()
    if fmt == "md":
        return _markdown(entries, verify(store))
    raise InputError(f"unknown export format '{fmt}': use jsonl, csv or md")


def neutralise(value: Any) -> Any:
    """Prefix a text cell starting with = + - @ (or tab/CR) with ' so spreadsheets do not run it (OWASP)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
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
        lines += ["", "Evidence at the time:", ""]
        lines += [_evidence_line(f, d.evidence.get(f)) for f in ("drift", "abtest", "fairness", "triggers")]
        lines += ["", f"`hash {d.hash}` · `prev {d.prev_hash}`", ""]
    return "\n".join(lines)
