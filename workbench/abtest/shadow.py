"""Shadow mode: champion and challenger scored on the same requests (a file of scored pairs), compared paired.

The demo's A/B arms serve different units, so shadow mode reads a file with one row per request and both
models' predictions (and the label where known): ``workbench shadow --file F --champion-col A
--challenger-col B [--label-col Y]``. The engine counts agreement and the 2×2 correctness table in one
aggregate; :func:`workbench.stats.shadow.compare_shadow` gives the agreement rate (Wilson interval) and
McNemar's exact test on the discordant pairs (as ``statsmodels.stats.contingency_tables.mcnemar``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.errors import InputError
from workbench.sources.files import file_table
from workbench.stats.clean import json_ready
from workbench.stats.shadow import ShadowCounts, ShadowResult, compare_shadow


def shadow_counts(
    path: str | Path, champion_col: str, challenger_col: str, label_col: str | None = None
) -> ShadowCounts:
    """Paired counts over rows where both predictions are present (labelled counts where the label is too)."""
    with file_table(path) as table:
        wanted = [c for c in (champion_col, challenger_col, label_col) if c]
        missing = [c for c in wanted if c not in table.columns]
        if missing:
            raise InputError(f"no column {', '.join(repr(c) for c in missing)} in {Path(path).name} "
                             f"(it has {', '.join(table.columns)})")  # fmt: skip
        # Compared as numbers when every column is numeric (a label column with gaps reads as 1.0 where the
        # predictions read as 1), else as text ("spam" vs "spam").
        numeric = all(table[c].type().is_numeric() or table[c].type().is_boolean() for c in wanted)
        as_value = "float64" if numeric else "string"
        t = table.filter(table[champion_col].notnull() & table[challenger_col].notnull())
        a, b = t[champion_col].cast(as_value), t[challenger_col].cast(as_value)
        aggregates = {"n": t.count(), "agree": t.count(where=a == b)}
        if label_col:
            y = t[label_col].cast(as_value)
            has = y.notnull()
            aggregates |= {
                "labelled": t.count(where=has),
                "both_right": t.count(where=has & (a == y) & (b == y)),
                "champion_only_right": t.count(where=has & (a == y) & (b != y)),
                "challenger_only_right": t.count(where=has & (a != y) & (b == y)),
                "both_wrong": t.count(where=has & (a != y) & (b != y)),
            }
        row = t.aggregate(**aggregates).execute().iloc[0]
    return ShadowCounts(**{k: int(v) for k, v in row.items()})


def analyse_shadow_file(
    path: str | Path, champion_col: str, challenger_col: str, label_col: str | None = None, alpha: float = 0.05
) -> ShadowResult:
    """Agreement and (with labels) McNemar's test of the two models scored on the same requests."""
    return compare_shadow(shadow_counts(path, champion_col, challenger_col, label_col), alpha)


def shadow_document(result: ShadowResult) -> dict[str, Any]:
    """The JSON document of a shadow comparison (no NaN): the CLI's ``--json`` output and the page's download."""
    return json_ready(result.to_dict())
