"""What the Fairness page shows, as data: the cached audit, the group table, flags, the run recorded once.

No statistic is computed here; every number comes from :class:`workbench.fairness.FairnessAudit`.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from workbench.fairness import FairnessAudit, audit_store
from workbench.queries import Window
from workbench.stats.fairness import METRIC_NAMES, FairnessSettings
from workbench.store import Store


@st.cache_data(show_spinner=False, max_entries=16)
def cached_audit(
    path: str,
    mtime: float,
    window: Window | None,
    sensitive: tuple[str, ...],
    reference: str | None,
    population: tuple[tuple[str, float], ...] | None,
    champion: str | None,
    challenger: str | None,
    settings: FairnessSettings,
    _progress: Callable[..., None] | None = None,
) -> FairnessAudit:
    """The audit of the store at ``path``, cached per modification time and inputs (``_progress`` not hashed)."""
    del mtime
    say = (lambda text: _progress(label=f"Fairness audit: {text}…")) if _progress else None
    return audit_store(Store(path), list(sensitive), window, settings, reference, dict(population) if population else
                       None, champion, challenger, say)  # fmt: skip


def record_once(store: Store, audit: FairnessAudit, key: tuple) -> None:
    """Record the run (``record_run(store, "fairness", …)``) once per audit shown in this session."""
    from workbench.evidence import record_run

    done = st.session_state.setdefault("fairness_recorded", set())
    key_text = repr((str(store.path), *key, audit.verdict, audit.verdict_text))
    if key_text not in done:
        record_run(store, "fairness", audit.verdict, audit.run_summary())
        done.add(key_text)


def _ci(pair: list[float | None]) -> str:
    low, high = pair
    return "" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def group_table(audit: FairnessAudit, metric: str) -> pd.DataFrame:
    """One row per group: status, sizes, the chosen rate with its CI, its ratio to the reference with CI and
    adjusted p, then selection rate, TPR and FPR, and the group's flags in words."""
    name = METRIC_NAMES[metric]
    flags: dict[str, list[str]] = {}
    for flag in audit.flags:
        flags.setdefault(flag.get("group"), []).append(flag["kind"].replace("_", " "))
    rows = []
    for g in audit.groups:
        comparison = g["vs_reference"].get(metric, {})
        rows.append(
            {
                "group": g["group"],
                "status": g["status"],
                "n": g["n"],
                "labelled": g["n_labelled"],
                "positives": g["positives"],
                "negatives": g["negatives"],
                name: g[metric],
                f"{name} 95% CI": _ci(g["ci"][metric]),
                "ratio to reference": comparison.get("ratio"),
                "ratio 95% CI": _ci(comparison.get("ratio_ci", [None, None])),
                "adjusted p": comparison.get("p_adjusted"),
                **{METRIC_NAMES[m]: g[m] for m in ("selection_rate", "tpr", "fpr") if m != metric},
                "flags": ", ".join(sorted(set(flags.get(g["group"], [])))),
            }
        )
    return pd.DataFrame(rows)


def disparity_table(audit: FairnessAudit) -> pd.DataFrame:
    """fairlearn's disparities with their bootstrap intervals (and the per-rate between-groups ones)."""
    rows = []
    for name, value in audit.disparities.items():
        low, high = (audit.disparity_intervals.get(name) or [None, None])[:2]
        rows.append({"disparity": name, "value": value, "95% CI": _ci([low, high])})
    return pd.DataFrame(rows)


def versions_table(audit: FairnessAudit) -> pd.DataFrame:
    """Every disparity for champion and challenger, the change, its bootstrap CI and whether it is significant."""
    versions = audit.versions or {}
    return pd.DataFrame(
        [
            {
                "disparity": d["name"],
                versions.get("champion", "champion"): d["champion"],
                versions.get("challenger", "challenger"): d["challenger"],
                "change": d["change"],
                "change 95% CI": _ci(d["change_ci"]),
                "significant": d["significant"],
            }
            for d in versions.get("disparities", [])
        ]
    )
