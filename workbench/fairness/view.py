"""What the Fairness page shows, as data: the cached audit, the group table, flags, the run recorded once.

No statistic is computed here; every number comes from :class:`workbench.fairness.audit.FairnessAudit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from workbench.core.window import Window
from workbench.fairness.audit import FairnessAudit, audit_store
from workbench.sources.store import Store
from workbench.stats.fairness import FAIRLEARN_DISPARITIES, METRIC_NAMES, FairnessSettings


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
    from workbench.sources.evidence import record_run

    done = st.session_state.setdefault("fairness_recorded", set())
    key_text = repr((str(store.path), *key, audit.verdict, audit.verdict_text))
    if key_text not in done:
        record_run(store, "fairness", audit.verdict, audit.run_summary())
        done.add(key_text)


def _ci(pair: list[float | None]) -> str | None:
    """An interval as text, or None (shown "—") when it does not apply (the reference's ratio to itself)."""
    low, high = pair
    return None if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


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
    frame = pd.DataFrame(rows)
    text = {"group", "status", "flags", f"{name} 95% CI", "ratio 95% CI", "n", "labelled", "positives", "negatives"}
    for column in frame.columns.difference(list(text)):
        frame[column] = pd.to_numeric(frame[column]).astype("float64")  # None → NaN: shown blank, formatted
    return frame


def shown_group_columns(table: pd.DataFrame, metric: str) -> list[str]:
    """The columns of :func:`group_table` the page shows, so it fits without scrolling sideways: the group, its
    status and sizes, the chosen rate with its CI, the comparison with the reference, and the flags when any
    group has one. Positives, negatives and the other rates are behind an expander (and in the CSV)."""
    name = METRIC_NAMES[metric]
    shown = ["group", "status", "n", "labelled", name, f"{name} 95% CI", "ratio to reference", "ratio 95% CI",
             "adjusted p", "flags"]  # fmt: skip
    if table.empty or not table["flags"].astype(bool).any():
        shown.remove("flags")
    return [c for c in shown if c in table.columns]


def disparity_table(audit: FairnessAudit) -> pd.DataFrame:
    """fairlearn's disparities with their bootstrap intervals (and the per-rate between-groups ones)."""
    rows = []
    headline = [n for n in FAIRLEARN_DISPARITIES if n in audit.disparities]
    for name in [*headline, *(n for n in audit.disparities if n not in headline)]:
        value = audit.disparities[name]
        low, high = (audit.disparity_intervals.get(name) or [None, None])[:2]
        rows.append({"disparity": name, "value": value, "95% CI": _ci([low, high])})
    return pd.DataFrame(rows)


def versions_table(audit: FairnessAudit) -> pd.DataFrame:
    """Every disparity for champion and challenger, the change, its bootstrap CI and whether it is significant."""
    versions = audit.versions or {}
    order = {name: i for i, name in enumerate(FAIRLEARN_DISPARITIES)}
    changes = sorted(versions.get("disparities", []), key=lambda d: order.get(d["name"], len(order)))
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
            for d in changes
        ]
    )


def number_format(frame: pd.DataFrame) -> dict[str, Any]:
    """Streamlit column formats: rates and ratios to 3 decimals, p-values in 2 significant digits."""
    formats: dict[str, Any] = {}
    for column in frame.columns:
        if column in ("n", "labelled", "positives", "negatives"):
            formats[column] = st.column_config.NumberColumn(format="localized")
        elif column.split()[-1] == "p":
            formats[column] = st.column_config.NumberColumn(format="%.2g")
        elif pd.api.types.is_float_dtype(frame[column]):
            formats[column] = st.column_config.NumberColumn(format="%.3f")
    return formats
