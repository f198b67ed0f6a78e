"""File mode of the fairness audit: a CSV/Parquet/JSON Lines file (or an in-memory table) validated and renamed
into the columns of :func:`workbench.fairness.queries.store_rows`, the label being a column of the file (a row
without one is an unlabelled prediction). The checks cost no pass over a Parquet file when its statistics
settle them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

from workbench.core.errors import InputError
from workbench.sources.files import file_table


@contextmanager
def file_rows(
    path: str | Path,
    label: str,
    prediction: str,
    sensitive: Sequence[str],
    score: str | None = None,
    ts: str | None = None,
    model_version: str | None = None,
) -> Iterator[Any]:
    """Yield an Ibis table over a CSV/Parquet/JSON Lines file with the columns of :func:`store_rows`."""
    with file_table(path) as table:
        yield frame_rows(table, label, prediction, sensitive, score, ts, model_version, source=Path(path).name)


def frame_rows(
    table: Any,
    label: str,
    prediction: str,
    sensitive: Sequence[str],
    score: str | None = None,
    ts: str | None = None,
    model_version: str | None = None,
    source: str = "the data",
) -> Any:
    """Validate and rename an Ibis table's columns into the shape of :func:`store_rows` (file mode)."""
    roles = {"label": label, "prediction": prediction, "score": score, "ts": ts, "model_version": model_version}
    for column in [*(c for c in roles.values() if c), *sensitive]:
        if column not in table.columns:
            known = ", ".join(table.columns[:20])
            raise InputError(f"{source} has no column '{column}' (columns: {known})")
    clash = [c for c in sensitive if c in (label, prediction, score, ts, model_version)]
    if clash:
        raise InputError(f"'{clash[0]}' cannot be both a sensitive attribute and the label/prediction/score column")
    y, y_bad = _binary(table[label])
    yhat, yhat_bad = _binary(table[prediction])
    s = table[score].cast("float64") if score else ibis.null().cast("float64")
    checks = _checks(table, label, prediction, score, y_bad, yhat_bad, s)
    for role, column, bad in (("label", label, y_bad), ("prediction", prediction, yhat_bad)):
        n_bad = int(checks[f"bad_{role}"])
        if n_bad:
            example = table.filter(bad).select(v=table[column].cast("string")).limit(1).execute()["v"].iloc[0]
            raise InputError(
                f"{source}: {role} column '{column}' has {n_bad:,} values that are not 0 or 1, e.g. '{example}'"
            )
    if int(checks["score_outside"]):
        raise InputError(f"{source}: score column '{score}' has {int(checks['score_outside']):,} values outside [0, 1]")
    if int(checks["no_prediction"]) == int(checks["rows"]):
        raise InputError(f"{source}: the prediction column '{prediction}' is empty")
    ts_col = None
    if ts:
        ts_col = table[ts] if table[ts].type().is_timestamp() else table[ts].cast("timestamp")
    columns = {
        "prediction": yhat,
        "score": s,
        "ts": ts_col if ts_col is not None else ibis.null().cast("timestamp"),
        "model_version": table[model_version].cast("string") if model_version else ibis.null().cast("string"),
        **{c: table[c] for c in sensitive},
        **{c: ibis.null().cast("int64") for c in ("thumbs", "thumbs_up", "ratings")},
        **{c: ibis.null().cast("float64") for c in ("rating_sum", "rating_sumsq")},
        "label": y,
        "conflicting": ibis.literal(False),
    }
    rows = table.select(**columns)
    return rows.filter(rows.prediction.notnull()) if int(checks["no_prediction"]) else rows


def _checks(
    table: Any, label: str, prediction: str, score: str | None, y_bad: Any, yhat_bad: Any, s: Any
) -> dict[str, int]:
    """Rows, rows without a prediction, non-0/1 labels and predictions, scores outside [0, 1] of a file.

    First from counts, minima and maxima of the raw columns: a Parquet file answers those from its
    footer statistics without reading a row (~0.005 s instead of a ~0.3–0.7 s pass at 5M rows). An
    integer or boolean column with min ≥ 0 and max ≤ 1 holds only 0/1, and a score with min ≥ 0 and
    max ≤ 1 is inside; otherwise (text, float or an out-of-range bound) the exact counts are one pass.
    """
    stats = (
        table.aggregate(
            rows=table.count(),
            predictions=table[prediction].count(),
            **{
                f"{k}_{fn}": getattr(table[c], fn)()
                for k, c in (("y", label), ("yhat", prediction), ("s", score))
                if c and (table[c].type().is_integer() or table[c].type().is_floating())
                for fn in ("min", "max")
            },
        )
        .execute()
        .iloc[0]
    )

    def inside(key: str, column: str | None, integral: bool) -> bool:
        if not column:
            return True
        kind = table[column].type()
        if kind.is_boolean():
            return True
        if f"{key}_min" not in stats or (integral and not kind.is_integer()):
            return False
        low, high = stats[f"{key}_min"], stats[f"{key}_max"]
        if pd.isna(low) and pd.isna(high):  # no value at all (or only NaN: counted exactly below)
            return not kind.is_floating()
        return bool(low >= 0 and high <= 1)  # NaN compares False: counted exactly below

    out = {"rows": int(stats["rows"]), "no_prediction": int(stats["rows"]) - int(stats["predictions"])}
    exact = {}
    if not inside("y", label, True):
        exact["bad_label"] = table.count(where=y_bad)
    if not inside("yhat", prediction, True):
        exact["bad_prediction"] = table.count(where=yhat_bad)
    if score and not inside("s", score, False):
        exact["score_outside"] = table.count(where=s.notnull() & ((s < 0) | (s > 1)))
    counted = table.aggregate(**exact).execute().iloc[0] if exact else {}
    for key in ("bad_label", "bad_prediction", "score_outside"):
        out[key] = int(counted[key]) if key in exact else 0
    return out


def _binary(col: Any) -> tuple[Any, Any]:
    """A 0/1 column as int8 and the condition of a value that is not 0/1 (booleans; 0/1 numbers; 0/1,
    true/false, yes/no text). Numbers are cast directly: going through text costs ~20× more per row.
    """
    if col.type().is_boolean():
        return col.cast("int8"), ibis.literal(False)
    if col.type().is_numeric():
        return col.cast("int8"), col.notnull() & ~col.cast("float64").isin([0.0, 1.0])
    value = col.cast("string").strip().lower()
    as_number = ibis.cases((value.isin(["true", "yes"]), "1"), (value.isin(["false", "no"]), "0"), else_=value)
    number = as_number.try_cast("float64")
    return number.cast("int8"), col.notnull() & (number.isnull() | ~number.isin([0.0, 1.0]))
