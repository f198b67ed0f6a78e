"""Per time chunk, each group's rate and its ratio to the reference group (for trigger rules and charts).

A trigger rule such as "any group's FPR ratio vs the reference group above 1.25, per day" reads
:func:`fpr_ratio_series`: one GROUP BY (``workbench.fairness.queries.cells``) over the predictions
joined with one label per trace, then the ratio per chunk from the counts. The reference group is
fixed over the whole window (default: the group with the most predictions), so the series compares
every day with the same group; a chunk where either side is below the rate's minimum size (default
30 labelled negatives for FPR) has ratio NaN and ``sufficient`` False, never a number from 3 rows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.fairness import queries as q
from workbench.fairness.result import load_settings
from workbench.sources.store import Store
from workbench.stats.fairness import GROUP_JOINER, RATES, FairnessSettings, minimum, rate_parts

SERIES_COLUMNS = (
    "chunk",
    "group",
    "value",
    "numerator",
    "denominator",
    "reference_group",
    "reference_value",
    "reference_denominator",
    "ratio",
    "sufficient",
)


def rate_ratio_series(
    store: Store,
    attribute: str | list[str],
    window: Window | None = None,
    granularity: str = "day",
    metric: str = "fpr",
    reference_group: str = "largest",
    settings: FairnessSettings | None = None,
) -> pd.DataFrame:
    """Return one row per (chunk, group but the reference): the rate, the reference's rate and their ratio.

    Columns :data:`SERIES_COLUMNS`; ``chunk`` is the UTC start of the day/week, ``ratio`` =
    rate_g / rate_ref (NaN when either side is below the minimum size or the reference rate is 0).
    ``attribute`` may be a list (an intersection, group names joined by " × ").
    """
    settings = settings or load_settings()
    if metric not in RATES:
        raise InputError(f"unknown rate '{metric}' (known: {', '.join(RATES)})")
    sensitive = [attribute] if isinstance(attribute, str) else list(attribute)
    with store.ibis() as con:
        rows = q.store_rows(con, window, sensitive, settings)
        frame = q.cells(rows, sensitive, chunk=granularity)
    if frame.empty:
        return pd.DataFrame(columns=list(SERIES_COLUMNS))
    names = frame[q.group_key(sensitive[0])].astype(str)
    for column in sensitive[1:]:
        names = names + GROUP_JOINER + frame[q.group_key(column)].astype(str)
    frame = frame.assign(group=names)
    groups = sorted(frame["group"].unique())
    if reference_group in (None, "", "largest"):
        sizes = frame.groupby("group")["n"].sum()
        reference = max(groups, key=lambda g: (sizes[g], [-ord(c) for c in g]))
    elif reference_group in groups:
        reference = reference_group
    else:
        raise InputError(f"reference group '{reference_group}' is not one of: {', '.join(groups[:20])}")
    chunks = sorted(frame["chunk"].unique())
    cells = (
        frame.groupby(["chunk", "group"])[["tp", "fp", "fn", "tn", "unlabelled_selected", "unlabelled_rejected"]]
        .sum()
        .reindex(pd.MultiIndex.from_product([chunks, groups]), fill_value=0.0)
        .to_numpy(dtype=float)
        .reshape(len(chunks), len(groups), 6)
    )
    num, den = rate_parts(cells, metric, settings.selection_rate_population)
    floor = max(minimum(metric, settings), 1)
    ref = groups.index(reference)
    out: list[dict[str, Any]] = []
    for t, chunk in enumerate(chunks):
        ref_value = num[t, ref] / den[t, ref] if den[t, ref] > 0 else None
        for g, group in enumerate(groups):
            if g == ref:
                continue
            value = num[t, g] / den[t, g] if den[t, g] > 0 else None
            sufficient = bool(den[t, g] >= floor and den[t, ref] >= floor)
            ratio = value / ref_value if sufficient and value is not None and ref_value else None
            out.append(
                {
                    "chunk": pd.Timestamp(chunk),
                    "group": group,
                    "value": value,
                    "numerator": int(num[t, g]),
                    "denominator": int(den[t, g]),
                    "reference_group": reference,
                    "reference_value": ref_value,
                    "reference_denominator": int(den[t, ref]),
                    "ratio": ratio,
                    "sufficient": sufficient,
                }
            )
    return pd.DataFrame(out, columns=list(SERIES_COLUMNS)).astype({"ratio": "float64", "value": "float64"})


def fpr_ratio_series(
    store: Store,
    attribute: str | list[str],
    window: Window | None = None,
    granularity: str = "day",
    reference_group: str = "largest",
    settings: FairnessSettings | None = None,
) -> pd.DataFrame:
    """Return each group's FPR ratio to the reference group per day/week (see :func:`rate_ratio_series`)."""
    return rate_ratio_series(store, attribute, window, granularity, "fpr", reference_group, settings)
