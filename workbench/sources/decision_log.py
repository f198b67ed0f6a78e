"""What the analyses read of the decision log (the gate writes and verifies it: ``workbench.gate.decisions``)."""

from __future__ import annotations

from workbench.sources.store import Store


def approval_times(store: Store) -> list[str]:
    """When each approved retrain was decided (ISO UTC text, log order); empty when nothing was decided yet."""
    with store.connect(read_only=True) as con:
        exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'decisions'")
        if not exists.fetchone()[0]:
            return []
        rows = con.execute("SELECT decided_at FROM decisions WHERE decision = 'approve' ORDER BY seq, rowid")
        return [r[0] for r in rows.fetchall()]
